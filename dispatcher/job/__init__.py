"""What a job is: its options, its envelope (the queue message's body), the job-line
format producers outside Python write, its id and its lane's queue."""
