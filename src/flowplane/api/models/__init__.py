"""Wire models of the HTTP API: request and response bodies, apart from the route functions."""
