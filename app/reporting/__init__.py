"""The reporting cycle (chu kỳ báo cáo): annual reports submitted up the tree, the parent's acceptance or
return, due dates set by the level above, and completeness."""
