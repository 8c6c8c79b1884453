"""Cross-cutting infrastructure: settings, database, errors, pagination, security, audit."""
