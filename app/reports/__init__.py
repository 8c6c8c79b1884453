"""The annual report (báo cáo năm) and the person-level CSV exports of education offices."""
