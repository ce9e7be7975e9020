package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// caddyProc is one Caddy started by the benchmark as a child process.
type caddyProc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time // when the process was started
	log     string
	done    chan struct{} // closed when the process has exited
	err     error         // the exit status, once done is closed
}

// cleanup holds what must be undone on exit, however the program ends: the Caddy processes
// still running and the temporary directories.
var cleanup struct {
	mu    sync.Mutex
	procs map[*caddyProc]bool
	dirs  []string
	keep  bool // -keep: leave the directories
}

// registerDir has dir removed on exit.
func registerDir(dir string) {
	cleanup.mu.Lock()
	defer cleanup.mu.Unlock()
	cleanup.dirs = append(cleanup.dirs, dir)
}

// cleanupAll kills the Caddy processes still running and removes the temporary directories.
// It is safe to call more than once, and from the signal handler.
func cleanupAll() {
	cleanup.mu.Lock()
	defer cleanup.mu.Unlock()
	for p := range cleanup.procs {
		p.kill()
	}
	cleanup.procs = nil
	if cleanup.keep {
		for _, d := range cleanup.dirs {
			fmt.Fprintln(os.Stderr, "kept", d)
		}
	} else {
		for _, d := range cleanup.dirs {
			_ = os.RemoveAll(d)
		}
	}
	cleanup.dirs = nil
}

// startCaddy writes caddyfile into dir as <name>.Caddyfile and starts bin on it, its output in
// dir/<name>.log. The process runs in its own process group (a Ctrl-C reaches this program,
// which stops it) and is killed by the kernel if this program dies.
func startCaddy(bin, dir, name, caddyfile string) (*caddyProc, error) {
	cf := filepath.Join(dir, name+".Caddyfile")
	if err := os.WriteFile(cf, []byte(caddyfile), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--config", cf, "--adapter", "caddyfile")
	cmd.Dir = dir
	// keep Caddy's own data and config (instance id, autosave) out of the user's home
	cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, name+"-xdg", "data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, name+"-xdg", "config"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &caddyProc{name: name, cmd: cmd, started: started, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	cleanup.mu.Lock()
	if cleanup.procs == nil {
		cleanup.procs = map[*caddyProc]bool{}
	}
	cleanup.procs[p] = true
	cleanup.mu.Unlock()
	return p, nil
}

// pid is the process id of the Caddy process.
func (p *caddyProc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *caddyProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process group at once.
func (p *caddyProc) kill() {
	if !p.exited() {
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// stop asks Caddy to shut down (SIGINT: a graceful stop that closes the store), and kills it
// if it is not gone within 30 s.
func (p *caddyProc) stop() {
	if !p.exited() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			fmt.Fprintf(os.Stderr, "%s did not stop within 30 s; killing it\n", p.name)
			p.kill()
		}
	}
	cleanup.mu.Lock()
	delete(cleanup.procs, p)
	cleanup.mu.Unlock()
}

// waitReady waits until every URL answers 200, or fails when the process exits or timeout ends.
func (p *caddyProc) waitReady(client *http.Client, timeout time.Duration, urls ...string) error {
	deadline := time.Now().Add(timeout)
	for _, u := range urls {
		for {
			if p.exited() {
				return fmt.Errorf("%s exited during start-up (%v); its log:\n%s", p.name, p.err, p.logTail(30))
			}
			resp, err := client.Get(u)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready within %s (%s: %v); its log:\n%s", p.name, timeout, u,
					errOrStatus(err, resp), p.logTail(30))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func errOrStatus(err error, resp *http.Response) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status
}

// logTail is the last n lines of the process's output.
func (p *caddyProc) logTail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// checkPortsFree fails if one of the addresses is already taken (another bench/perf, or
// bench/load.sh, which uses admin localhost:2399 too).
func checkPortsFree(addrs ...string) error {
	for _, a := range addrs {
		var l net.Listener
		var err error
		for range 50 { // a Caddy just stopped may hold the port a moment longer
			if l, err = net.Listen("tcp", a); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("%s is in use (another bench/perf or bench/load.sh running?): %w", a, err)
		}
		l.Close()
	}
	return nil
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// cpuSeconds is the CPU time (user + system, all threads) the process has used so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// the command name may contain spaces and parentheses: fields start after the last ')'
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unreadable utime or stime in /proc stat")
	}
	return float64(ut+st) / clockTicks, nil
}

// memory is a process's resident set, in MB.
type memory struct {
	hwm  float64 // peak (VmHWM)
	rss  float64 // now (VmRSS)
	anon float64 // now, anonymous (RssAnon): not the file pages Badger maps
}

// memoryMB reads the resident set of a process from /proc/<pid>/status.
func memoryMB(pid int) (memory, error) {
	var m memory
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m, err
	}
	fields := map[string]*float64{"VmHWM": &m.hwm, "VmRSS": &m.rss, "RssAnon": &m.anon}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		dst := fields[name]
		if !ok || dst == nil {
			continue
		}
		if f := strings.Fields(val); len(f) > 0 { // "123456 kB"
			if kb, err := strconv.ParseFloat(f[0], 64); err == nil {
				*dst = kb / 1024
			}
		}
	}
	if m.hwm == 0 {
		return m, errors.New("no VmHWM in /proc status")
	}
	return m, nil
}
