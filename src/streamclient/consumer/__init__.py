"""The consumer: subscription state, fetching, group membership and assignors."""
