"""Finding and fetching jobs: the listing walk over windows and pages, and resolving each job's archives. Internal."""
