"""Source reputation: what each client address, network and AS sent.

``sources`` names a client's sources (address, /24 or /64, AS from the
admin's prefix table); ``counts`` keeps their decayed outcome counts in the
store; ``recorder`` feeds the counts from finished transactions;
``report`` builds and sends RFC 5965 abuse reports; ``zone`` exports the
worst sources as a DNSBL zone; ``campaigns`` groups bulk fingerprints.
See docs/reputation.md.
"""
