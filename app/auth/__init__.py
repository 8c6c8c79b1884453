"""Users, role assignments, service accounts, tokens, and the scope resolver."""
