"""The routing service: order intake, lifecycle, store choice, plus store status and catalog."""
