"""Households (gia đình) and clans (dòng họ): the collectives that learning-family and learning-clan
titles recognise. Communities (thôn, tổ dân phố) and learning units (agencies, schools, enterprises) are
org units and need no records of their own."""
