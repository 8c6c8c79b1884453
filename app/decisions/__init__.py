"""Recognition decisions (quyết định công nhận): the unit head recognises reviewed, passed evaluations of
their subtree in one act, and may revoke it."""
