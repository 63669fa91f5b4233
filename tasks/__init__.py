"""The worker edge: thin Celery task bodies and the beat schedule (``celery -A tasks``).

Tasks claim a job, call ``dispatcher`` and record the outcome; nothing imports this
package. The send tasks arrive with the dispatch pipeline.
"""
