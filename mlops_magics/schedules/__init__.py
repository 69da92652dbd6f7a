"""Schedules: notebooks run as jobs on cron slots, each slot exactly once (``mlops-magics schedule``)."""
