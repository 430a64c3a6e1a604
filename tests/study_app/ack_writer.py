"""A study participant load that prints `ACK <trial_id>` after each submit returns; killed with SIGKILL by a test."""

import sys
import threading

from study_app import enrolment
from study_app import participation as part
from study_app.db import StudyDB

db = StudyDB(sys.argv[1])
study_id = int(sys.argv[2])
print_lock = threading.Lock()


def participant(n: int) -> None:
    pid = enrolment.enroll(db, study_id, f"killed-{n}")
    while (trial := part.progress(db, pid).trial) is not None:
        if not trial.shown:
            part.mark_shown(db, trial.trial_id)
        part.submit(db, pid, trial.trial_id, dict.fromkeys(part.questions_for(trial.is_catch), 0))
        with print_lock:  # the acknowledgement goes out only after the commit returned
            print(f"ACK {trial.trial_id}", flush=True)


threads = [threading.Thread(target=participant, args=(n,)) for n in range(1000)]
for t in threads[:8]:
    t.start()
for i, t in enumerate(threads[8:], start=8):
    threads[i - 8].join()
    t.start()
