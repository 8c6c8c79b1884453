"""Bulk imports of org units and people from CSV or XLSX files (nhập dữ liệu hàng loạt)."""
