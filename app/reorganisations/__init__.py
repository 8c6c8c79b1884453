"""Reorganisations (sắp xếp đơn vị hành chính): dated, audited changes of the tree — create, move, merge,
dissolve, rename — applied all or nothing."""
