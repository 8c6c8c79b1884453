"""People: the persons who are evaluated (cá nhân), each in one unit and one population group."""
