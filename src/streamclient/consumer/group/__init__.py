"""Consumer group membership: the classic group protocol and its wire formats."""
