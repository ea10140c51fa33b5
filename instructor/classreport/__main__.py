"""`python -m instructor.classreport grades/05`: see instructor.classreport.build."""

import sys

from instructor.classreport.build import main

sys.exit(main())
