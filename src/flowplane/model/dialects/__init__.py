"""Other systems' workflow languages, translated to and from Flowplane documents."""
