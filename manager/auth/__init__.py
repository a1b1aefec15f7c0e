"""Who is calling the fleet API, and what their role lets them do."""
