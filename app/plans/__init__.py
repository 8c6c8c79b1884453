"""Implementation plans (kế hoạch) and their percentage targets."""
