package host

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one fluent-bit process: started by this agent, or adopted from an earlier run of
// it (then it is not the agent's child, and its end is noticed by polling).
type process struct {
	pid int
	// startTicks is the process's start time in clock ticks since boot (/proc/PID/stat), which
	// tells the process from a later one that got the same PID.
	startTicks uint64
	// revision is the config revision it runs; hotReload whether that config enables reloads.
	revision  string
	hotReload bool
	// config is the config file it was started with (and reloads).
	config  string
	started time.Time
	// logOffset is where this run's output starts in the log file.
	logOffset int64

	exited  chan struct{}
	exitMsg string // how it ended, once exited is closed
	// stopping is set when the agent asked it to end, so the end is no crash.
	stopping bool
}

// startProcess runs binary -c config in dir, its output appended to logPath. The process gets a
// process group of its own: signals to the agent (Ctrl-C, a service manager stopping it) do not
// reach the pipelines, which keep running while the agent restarts.
func startProcess(binary, config, dir, logPath string) (*process, error) {
	rotate(logPath, 8<<20)
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", logPath, err)
	}
	defer logFile.Close()
	offset, _ := logFile.Seek(0, 2)
	cmd := exec.Command(binary, "-c", config)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	p := &process{pid: cmd.Process.Pid, config: config, started: time.Now(), logOffset: offset, exited: make(chan struct{})}
	p.startTicks, _ = startTicks(p.pid)
	go func() {
		err := cmd.Wait()
		p.exitMsg = exitMessage(cmd.ProcessState, err)
		close(p.exited)
	}()
	return p, nil
}

// adoptProcess takes over a fluent-bit an earlier agent started, if PID still is that process:
// the same start time and a command line naming the same binary and config.
func adoptProcess(pid int, ticks uint64, binary, config string, logPath string) (*process, bool) {
	if pid <= 0 || !running(pid, ticks) {
		return nil, false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, false
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) < 3 || args[0] != binary || args[len(args)-1] != config {
		return nil, false
	}
	p := &process{pid: pid, startTicks: ticks, config: config, started: time.Now(), exited: make(chan struct{})}
	if fi, err := os.Stat(logPath); err == nil {
		p.logOffset = fi.Size()
	}
	go func() {
		for running(pid, ticks) {
			time.Sleep(500 * time.Millisecond)
		}
		p.exitMsg = "exited"
		close(p.exited)
	}()
	return p, true
}

func (p *process) configPath() string { return p.config }

func (p *process) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// stop asks the process group to end (SIGTERM: Fluent Bit flushes within its grace period),
// and kills it after grace.
func (p *process) stop(grace time.Duration) {
	p.stopping = true
	if p.done() {
		return
	}
	signalGroup(p.pid, syscall.SIGTERM)
	select {
	case <-p.exited:
		return
	case <-time.After(grace):
	}
	signalGroup(p.pid, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
	}
}

func signalGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil {
		_ = syscall.Kill(pid, sig)
	}
}

// running tells whether pid is alive and is still the process that started at ticks (zombies
// count as ended).
func running(pid int, ticks uint64) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	state, got, err := parseStat(stat)
	if err != nil || state == "Z" || state == "X" {
		return false
	}
	return ticks == 0 || got == ticks
}

func startTicks(pid int) (uint64, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	_, ticks, err := parseStat(stat)
	return ticks, err
}

// parseStat reads the state (field 3) and start time (field 22) of /proc/PID/stat. The command
// name in field 2 may hold blanks and parentheses, so fields are counted after its last ')'.
func parseStat(stat []byte) (state string, ticks uint64, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", 0, errors.New("malformed /proc stat")
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 20 {
		return "", 0, errors.New("short /proc stat")
	}
	ticks, err = strconv.ParseUint(fields[19], 10, 64)
	return fields[0], ticks, err
}

func exitMessage(ps *os.ProcessState, err error) string {
	if ps == nil {
		if err != nil {
			return err.Error()
		}
		return "exited"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "killed by signal " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ps.ExitCode())
}

// rotate moves a log file past limit bytes aside (keeping one old file), before a new run
// appends to it.
func rotate(path string, limit int64) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > limit {
		_ = os.Rename(path, path+".1")
	}
}
