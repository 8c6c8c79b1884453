"""The annual evaluation: self-assessment with evidence, committee review, recognition decisions."""
