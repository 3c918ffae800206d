"""Wire models of the HTTP API: the pydantic bodies of requests and responses, by area."""
