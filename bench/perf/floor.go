package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// The idle floor: what idling costs below the module, each in a process of its own (this
// program run again with floorEnv set), measured over the same window as the Caddy under test.
//
//	empty-store    storage.Open on an empty directory: the module's store with nothing stored,
//	               so what it costs whatever the size (Badger runs its 2 compactors)
//	no-compactors  Badger with the same options but no compactor: what remains of Badger
//	tickers        two goroutines woken every 50 ms and nothing else: the Go runtime's share of
//	               what Badger's two compactors cost (each wakes on a fixed 50 ms ticker)
var floorKinds = []string{"empty-store", "no-compactors", "tickers"}

// floorEnv selects the floor kind a re-run of this program idles as (see runFloor).
const floorEnv = "CINETPAY_PERF_FLOOR"

// floorProc is one floor process idling.
type floorProc struct {
	kind string
	cmd  *exec.Cmd
	out  *bufio.Reader
}

// startFloor starts one floor process of each kind: each waits settle, then measures its own
// CPU over idle and prints it.
func startFloor(dir string, settle, idle time.Duration) ([]*floorProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var procs []*floorProc
	for _, kind := range floorKinds {
		d := filepath.Join(dir, "floor-"+kind)
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), floorEnv+"="+strings.Join([]string{kind, d, settle.String(), idle.String()}, ","))
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		if err != nil {
			stopFloor(procs)
			return nil, fmt.Errorf("starting the idle floor %s: %w", kind, err)
		}
		procs = append(procs, &floorProc{kind: kind, cmd: cmd, out: bufio.NewReader(out)})
	}
	return procs, nil
}

// wait reads the CPU percentage the floor process measured.
func (f *floorProc) wait() (float64, error) {
	line, err := f.out.ReadString('\n')
	werr := f.cmd.Wait()
	if err != nil {
		return 0, fmt.Errorf("idle floor %s: %v (%v)", f.kind, err, werr)
	}
	return strconv.ParseFloat(strings.TrimSpace(line), 64)
}

func stopFloor(procs []*floorProc) {
	for _, f := range procs {
		_ = f.cmd.Process.Kill()
		_ = f.cmd.Wait()
	}
}

// runFloor is the program run as a floor process (floorEnv set): it idles as its kind, prints
// the CPU of a core it used over the window, in percent, and returns.
func runFloor(spec string) error {
	parts := strings.Split(spec, ",")
	if len(parts) != 4 {
		return errors.New(floorEnv + ": want kind,dir,settle,idle")
	}
	kind, dir := parts[0], parts[1]
	settle, err1 := time.ParseDuration(parts[2])
	idle, err2 := time.ParseDuration(parts[3])
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	switch kind {
	case "empty-store":
		s, err := storage.Open(dir, storage.Options{})
		if err != nil {
			return err
		}
		defer s.Close()
	case "no-compactors":
		// the options of storage.Open, but no compactor
		db, err := badger.Open(badger.DefaultOptions(dir).WithSyncWrites(true).WithLogger(nil).
			WithMemTableSize(8 << 20).WithNumMemtables(2).WithBlockCacheSize(16 << 20).
			WithIndexCacheSize(8 << 20).WithValueLogFileSize(64 << 20).WithNumVersionsToKeep(1).
			WithNumCompactors(0))
		if err != nil {
			return err
		}
		defer db.Close()
	case "tickers":
		for range 2 {
			go func() {
				for range time.Tick(50 * time.Millisecond) {
				}
			}()
		}
	default:
		return fmt.Errorf(floorEnv+": unknown kind %q", kind)
	}
	time.Sleep(settle)
	c0 := ownCPU()
	t0 := time.Now()
	time.Sleep(idle)
	fmt.Printf("%.4f\n", (ownCPU()-c0)/time.Since(t0).Seconds()*100)
	return nil
}

// ownCPU is the CPU time of this process, user and system, in seconds (finer than /proc's ticks).
func ownCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
