"""Whole reels on a render farm: a frame range split into chunks that farm tasks restore
independently (:mod:`~rrtn_plugin.farm.chunks`), and the job description a farm manager runs
(:mod:`~rrtn_plugin.farm.openjd`: Open Job Description, as AWS Deadline Cloud runs it), and
a restore planned as such a job (:mod:`~rrtn_plugin.farm.job`: its chunks, and the options every
task runs with, made from the restore options' description).

Each task is an ordinary ``rrtn-plugin restore --frames a-b --handles h --skip-existing``: it
reads enough context for its windows to be the whole run's windows, writes only its own frames,
atomically, and skips frames an earlier attempt finished, so a farm may retry it freely.
"""
