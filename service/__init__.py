"""The front door: the command line and the HTTP service, thin over the library."""
