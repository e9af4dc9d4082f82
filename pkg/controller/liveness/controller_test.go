package liveness

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1 "github.com/calyptia/core-management-plane/pkg/apis/core/v1"
)

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { t := metav1.NewTime(now.Add(d)); return &t }
	tests := []struct {
		name        string
		phase       corev1.CoreInstancePhase
		heartbeat   *metav1.Time
		wantExpired bool
		wantRecheck time.Duration
	}{
		{name: "waiting", phase: corev1.CoreInstancePhaseWaiting},
		{name: "running without a heartbeat time", phase: corev1.CoreInstancePhaseRunning},
		{name: "fresh heartbeat", phase: corev1.CoreInstancePhaseRunning, heartbeat: at(-10 * time.Second), wantRecheck: 25*time.Second + time.Millisecond},
		{name: "exactly at the timeout", phase: corev1.CoreInstancePhaseRunning, heartbeat: at(-35 * time.Second), wantRecheck: time.Millisecond},
		{name: "expired", phase: corev1.CoreInstancePhaseRunning, heartbeat: at(-36 * time.Second), wantExpired: true},
		{name: "already unreachable", phase: corev1.CoreInstancePhaseUnreachable, heartbeat: at(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ci := &corev1.CoreInstance{Status: corev1.CoreInstanceStatus{Phase: tt.phase, LastHeartbeatTime: tt.heartbeat}}
			expired, recheck := evaluate(ci, now)
			if expired != tt.wantExpired || recheck != tt.wantRecheck {
				t.Errorf("evaluate() = %v, %v; want %v, %v", expired, recheck, tt.wantExpired, tt.wantRecheck)
			}
		})
	}
}
