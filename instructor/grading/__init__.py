"""Auto-grading by notebook execution, with the judge outside the student's kernel.

How one submission is graded (``python -m instructor.grade``):

1. ``sandbox`` copies the notebook and the course's ``utils`` into a fresh folder and starts ``runner`` there in an
   isolated process: its own mount, network, IPC, UTS and PID namespaces, a read-only view of the Python installation and
   nothing else of the machine, an unprivileged user, a control group and a size-capped tmpfs of its own (limits
   for the submission as a whole: memory, processes, CPU, disk) and a scrubbed environment.
2. ``runner`` executes the notebook in a Jupyter kernel, then asks the kernel for data only: each hidden test's
   *probe* (from ``solutions/grading/<assignment>/probes.py``, the only hidden-test code that enters the kernel, by
   cells kept out of its history and namespace) calls the student's functions on inputs the instructor chose and
   returns plain tensors, which ``kernel_side`` writes to a file whose name the notebook could not know.
3. ``judge`` (the trusted process) loads those files with ``torch.load(weights_only=True)``, never student code,
   and the judges of ``solutions/grading/<assignment>/judges.py`` compare them with the instructor's reference
   results (``build/grading-reference/``, built from the solution notebook by ``reference``) to award points.
4. ``report`` writes the gradebook, per-student feedback and the summary.
"""
