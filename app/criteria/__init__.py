"""Criteria sets (bộ tiêu chí): versioned data, derivable into local variants, frozen once used."""
