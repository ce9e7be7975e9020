// Command perf is the benchmark suite of the issue "performance at scale" (not a test: it
// prints figures and never fails on a missed goal). bench/perf.sh builds ./cmd/caddy and runs it:
//
//	bash bench/perf.sh                                   # every scenario, 3 runs, 100k stored
//	bash bench/perf.sh -scenarios backlog,recheck -n 2000
//	bash bench/perf.sh -scenarios backlog -n 100000 -timeout 5m
//	bash bench/perf.sh -scenarios idle,admin -stored 1000000 -cache /var/tmp/cinetpay-perf
//
// Each scenario runs against the built Caddy started as a child process with a generated
// Caddyfile: admin localhost:2399 (as bench/Caddyfile), a plain Caddy site (127.0.0.1:9310,
// `respond`, the baseline) and the module's site (127.0.0.1:9311) in one process. The module's
// store is seeded before Caddy starts (Badger allows one process per directory) with the
// storage package's bulk loader, Badger.Import, then compacted (-flatten) as a store that grew
// over months would be; each run works on a fresh copy of the seeded store. The CinetPay sandbox
// is a cinetpay_sandbox site (127.0.0.1:9313) in a second Caddy process of the same binary, so
// that its transactions can be created before the module's Caddy starts on the seeded store,
// and so that the idle figures are the module's process alone. The shop is a Go server in this
// program (127.0.0.1:9314) that counts the deliveries and their distinct event ids.
//
// Scenarios (goals from the issue) and their baselines, measured in the same run:
//
//	backlog    N pending deliveries, all due, seeded: deliveries/s until all arrived (≥ 1000/s)
//	recheck    N PENDING payments due for a re-check, rate_limit 1000: re-checks/s against
//	           min(rate budget, the sandbox's own /check capacity)   (limited by those, ≥ 0.8×)
//	idle       CPU of a core over 30 s after 10 s, and peak RSS, N stored (≤ 0.3%, ≤ 150 MB at
//	           1M); baselines: plain Caddy alone in a third process (127.0.0.1:9320, admin
//	           localhost:2398), and a copy of the store opened alone in this process; the
//	           floor, in processes of their own (floor.go): an empty store, Badger without
//	           compactors, two 50 ms tickers alone
//	admin      median latency of one payment, of the PENDING payments and of the pending
//	           deliveries through the admin API, N stored              (≤ 5 / 50 / 50 ms at 1M)
//	first      first notifications of payments accepted at the sandbox whose notifications were
//	           lost, -concurrency at a time, until delivered to the shop, against Badger's own
//	           rate of synced 1 KB writes from as many writers (≥ 0.5×), and a plain Caddy POST;
//	           up to -notify-n 1000 the checks fit in the rate limiter's burst (rate_limit 1000
//	           is the most the module takes), beyond that the budget caps the figure at 1000/s;
//	           the cores used by Caddy, the sandbox and this program, and the ceiling: the rate
//	           every core busy at the CPU all three spend per notification would reach
//	duplicate  one valid notification of an ACCEPTED payment again and again, against a plain
//	           Caddy `respond` POST of the same body                                 (≥ 0.8×)
//
// Every scenario runs -runs times; the table at the end gives the median, each run's figure,
// the baseline's median and the median of the per-run ratios, the goal and whether the median
// meets it. A drain that does not finish within -timeout is reported from what arrived, and
// marked incomplete. Caddy is stopped and the temporary directory removed on exit, Ctrl-C
// included; a Caddy outliving a killed perf is killed by the kernel (Pdeathsig).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Addresses and made-up keys of the generated configurations.
const (
	siteID      = "900000"
	apiKey      = "bench-api-key"
	secretKey   = "bench-secret-key"
	plainAddr   = "127.0.0.1:9310"
	moduleAddr  = "127.0.0.1:9311"
	sandboxAddr = "127.0.0.1:9313"
	shopAddr    = "127.0.0.1:9314"
	adminAddr   = "localhost:2399"
	plainURL    = "http://" + plainAddr
	moduleURL   = "http://" + moduleAddr
	sandboxURL  = "http://" + sandboxAddr
	adminURL    = "http://" + adminAddr
	// the idle baseline: plain Caddy alone, in a process of its own
	idleBaselineAddr  = "127.0.0.1:9320"
	idleBaselineAdmin = "localhost:2398"
	// rateLimit is the module's rate_limit (CinetPay calls per second), as in bench/Caddyfile:
	// the most the module accepts. Its limiter's burst is as many calls.
	rateLimit = 1000
)

// allScenarios are the scenarios, in the order they run.
var allScenarios = []string{"backlog", "recheck", "idle", "admin", "first", "duplicate"}

// config is the command line.
type config struct {
	caddy        string
	scenarios    []string
	runs         int
	n            int
	stored       []int
	notifyN      int
	concurrency  int
	seconds      time.Duration
	timeout      time.Duration
	startTimeout time.Duration
	settle       time.Duration
	idle         time.Duration
	adminReqs    int
	adminBudget  time.Duration
	cache        string
	profile      string
	workdir      string
	keep         bool
	// postgres, a DSN, runs backlog and first on PostgreSQL too (see onPostgres)
	postgres string
}

func (c *config) has(s string) bool { return slices.Contains(c.scenarios, s) }

func parseFlags() (*config, error) {
	c := &config{}
	scen := flag.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios: "+strings.Join(allScenarios, ", ")+" (or all)")
	stored := flag.String("stored", "100000", "comma-separated store sizes for idle and admin, e.g. 100000,1000000")
	flag.StringVar(&c.caddy, "caddy", os.Getenv("CADDY"), "the Caddy binary built from ./cmd/caddy (bench/perf.sh sets it)")
	flag.IntVar(&c.runs, "runs", 3, "runs of each scenario; the median is reported")
	flag.IntVar(&c.n, "n", 2000, "pending deliveries (backlog) and due re-checks (recheck)")
	flag.IntVar(&c.notifyN, "notify-n", 1000, "payments notified once each (first)")
	flag.IntVar(&c.concurrency, "concurrency", 16, "concurrent clients (first, duplicate and their baselines)")
	flag.DurationVar(&c.seconds, "seconds", 5*time.Second, "duration of each load measurement (duplicate, plain POST, Badger baseline)")
	flag.DurationVar(&c.timeout, "timeout", 60*time.Second, "longest wait for a drain (backlog, recheck, first); figures are then partial")
	flag.DurationVar(&c.startTimeout, "start-timeout", 5*time.Minute, "longest wait for a Caddy to be ready (opening a large store)")
	flag.DurationVar(&c.settle, "settle", 10*time.Second, "wait after start-up before the idle measurement")
	flag.DurationVar(&c.idle, "idle", 30*time.Second, "idle measurement window")
	flag.IntVar(&c.adminReqs, "admin-requests", 50, "requests per admin endpoint")
	flag.DurationVar(&c.adminBudget, "admin-budget", 15*time.Second, "longest time per admin endpoint (at least 5 requests are made)")
	flag.StringVar(&c.cache, "cache", "", "directory keeping seeded stored sets across invocations (keyed by the storage package's sources)")
	flag.StringVar(&c.profile, "profile", "", "directory to save the Caddy under test's pprof CPU profiles (each idle window, 2 s of the duplicate and of the first notifications) and heap profile after the admin requests (profiling adds a little CPU)")
	flag.StringVar(&c.workdir, "workdir", "", "directory for the temporary stores (default: the system temp dir); its disk is the one measured")
	flag.BoolVar(&flattenSeeded, "flatten", true, "compact seeded stores into one level before Caddy opens them, as a store grown over months is; false: Caddy compacts the bulk import's level-0 tables after start-up (CPU and memory the idle figures then include)")
	flag.StringVar(&c.postgres, "postgres", "", "a PostgreSQL server's DSN: backlog and first run on it too, beside Badger in the same run (a fresh schema per run, the seeded store migrated into it)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory (stores, Caddyfiles, logs)")
	flag.Parse()
	if flag.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if c.caddy == "" {
		return nil, errors.New("-caddy is required: run bench/perf.sh, which builds ./cmd/caddy, or pass a binary built from it")
	}
	if _, err := os.Stat(c.caddy); err != nil {
		return nil, fmt.Errorf("-caddy: %w", err)
	}
	for _, s := range strings.Split(*scen, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "all":
			c.scenarios = append(c.scenarios, allScenarios...)
		case slices.Contains(allScenarios, s):
			c.scenarios = append(c.scenarios, s)
		case s != "":
			return nil, fmt.Errorf("-scenarios: unknown scenario %q (want %s)", s, strings.Join(allScenarios, ", "))
		}
	}
	for _, s := range strings.Split(*stored, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(strings.ReplaceAll(s, "_", "")))
		if err != nil || n < 10 {
			return nil, fmt.Errorf("-stored: %q is not a store size of at least 10", s)
		}
		c.stored = append(c.stored, n)
	}
	switch {
	case len(c.scenarios) == 0:
		return nil, errors.New("-scenarios: none given")
	case c.runs < 1:
		return nil, errors.New("-runs must be at least 1")
	case c.n < 2 || c.notifyN < 2:
		return nil, errors.New("-n and -notify-n must be at least 2")
	case c.concurrency < 1:
		return nil, errors.New("-concurrency must be at least 1")
	}
	if c.notifyN > rateLimit && c.has("first") {
		fmt.Fprintf(os.Stderr, "perf: warning: -notify-n %d is beyond the rate limiter's burst of %d checks: "+
			"the first notifications are then capped at rate_limit %d/s\n", c.notifyN, rateLimit, rateLimit)
	}
	return c, nil
}

func main() {
	if spec := os.Getenv(floorEnv); spec != "" {
		// a process of the idle floor (see floor.go)
		if err := runFloor(spec); err != nil {
			fmt.Fprintln(os.Stderr, "perf: idle floor:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "perf:", err)
		os.Exit(2)
	}
	cleanup.keep = cfg.keep
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "\nperf: %v: stopping Caddy and removing the temporary files\n", s)
		cleanupAll()
		os.Exit(130)
	}()
	err = run(cfg)
	cleanupAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "perf:", err)
		os.Exit(1)
	}
}

func run(cfg *config) error {
	work, err := os.MkdirTemp(cfg.workdir, "cinetpay-perf-")
	if err != nil {
		return err
	}
	registerDir(work)
	for _, d := range []struct{ flag, dir string }{{"-cache", cfg.cache}, {"-profile", cfg.profile}} {
		if d.dir != "" {
			if err := os.MkdirAll(d.dir, 0o755); err != nil {
				return fmt.Errorf("%s: %w", d.flag, err)
			}
		}
	}
	if err := checkPortsFree(shopAddr); err != nil {
		return err
	}
	sh, err := startShop(shopAddr)
	if err != nil {
		return err
	}
	defer sh.close()
	b := &bench{
		cfg:       cfg,
		work:      work,
		shop:      sh,
		client:    newClient(cfg.concurrency, 30*time.Second),
		admin:     newClient(4, 5*time.Minute),
		templates: map[string]*dataset{},
	}
	b.sandbox = &sandboxClient{base: sandboxURL, client: b.client}
	fmt.Printf("perf: %s, %d CPUs, %s; caddy %s; work dir %s\n", time.Now().Format(time.DateTime), runtime.NumCPU(),
		runtime.Version(), cfg.caddy, work)
	fmt.Printf("perf: scenarios %s, %d runs, n=%d, stored=%v, notify-n=%d, concurrency %d\n\n",
		strings.Join(cfg.scenarios, ","), cfg.runs, cfg.n, cfg.stored, cfg.notifyN, cfg.concurrency)
	start := time.Now()
	steps := []struct {
		on bool
		fn func() error
	}{
		{cfg.has("backlog"), b.backlog},
		{cfg.has("recheck"), b.recheck},
		{cfg.has("idle") || cfg.has("admin"), b.stored},
		{cfg.has("first") || cfg.has("duplicate"), b.notify},
	}
	var failed error
	for _, s := range steps {
		if !s.on {
			continue
		}
		if err := s.fn(); err != nil {
			// keep what was measured: print the table, then the error
			failed = err
			break
		}
	}
	if len(b.rep.metrics) > 0 {
		fmt.Printf("\nSummary (median of %d runs; ratios are per run against the baseline of the same run), %s in all:\n\n",
			cfg.runs, time.Since(start).Round(time.Second))
		b.rep.print(os.Stdout)
	}
	return failed
}

// templateDir is where a dataset template of this invocation lives.
func (b *bench) templateDir(key string) string {
	return filepath.Join(b.work, "templates", key, "store")
}
