package checks

import "roster/catalog"

// statusFilter applies SuccessBeforePassing, FailuresBeforeWarning and
// FailuresBeforeCritical (Consul's StatusHandler): a result is reported
// only after enough consecutive results of its kind, so one flaky probe
// does not flap the service. It is pure: results in, verdicts out.
type statusFilter struct {
	successBeforePassing   int
	failuresBeforeWarning  int
	failuresBeforeCritical int

	successes int // consecutive passing/warning results
	failures  int // consecutive critical results
}

func newStatusFilter(successBeforePassing, failuresBeforeWarning, failuresBeforeCritical int) *statusFilter {
	if failuresBeforeWarning == 0 {
		// Consul: FailuresBeforeWarning defaults to FailuresBeforeCritical,
		// so a check configured for N failures goes straight to critical.
		failuresBeforeWarning = failuresBeforeCritical
	}
	return &statusFilter{
		successBeforePassing:   successBeforePassing,
		failuresBeforeWarning:  failuresBeforeWarning,
		failuresBeforeCritical: failuresBeforeCritical,
	}
}

// observe records one probe result and returns the status to report, or
// ok=false while the result is still pending its threshold.
func (f *statusFilter) observe(status string) (report string, ok bool) {
	if status == catalog.HealthPassing || status == catalog.HealthWarning {
		f.successes++
		f.failures = 0
		if f.successes >= f.successBeforePassing {
			return status, true
		}
		return "", false
	}
	f.successes = 0
	f.failures++
	if f.failures >= f.failuresBeforeCritical {
		return catalog.HealthCritical, true
	}
	if f.failures >= f.failuresBeforeWarning {
		return catalog.HealthWarning, true
	}
	return "", false
}
