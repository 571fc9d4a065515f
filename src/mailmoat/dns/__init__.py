"""DNS: the resolver interface and its cached dnspython implementation."""
