"""The order execution engine: domain, venues, pipeline and the AWS adapters."""
