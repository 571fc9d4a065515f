"""Pure logic with no I/O: symbols, transactions, scoring."""
