"""Everything that knows ConnectWise PSA: the HTTP client, queries, checks and repairs, and the sandbox."""
