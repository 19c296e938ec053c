"""What every family and method builds on, knowing no family: config parsing and errors, the task
interface, the adaptation harness, curves and their statistics, report verdicts, plotting helpers,
io, seeding, functional networks, training loops, the stages' plumbing and profile switching."""
