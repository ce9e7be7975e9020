package caddycinetpay

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// The operator's subcommands of `caddy cinetpay`: each speaks to the admin API of a running
// Caddy (see admin.go), found as `caddy reload` finds it: --address, else the admin address of
// --config, else Caddy's default, localhost:2019.

// exitNotFound: the payment or delivery named does not exist.
const exitNotFound = 3

// adminFlags are the flags that find the admin API.
type adminFlags struct {
	address, config, adapter string
	json                     bool
}

func (f *adminFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.address, "address", "", "the admin API's address (default: from --config, else localhost:2019)")
	c.Flags().StringVarP(&f.config, "config", "c", "", "a config file whose admin address to use")
	c.Flags().StringVarP(&f.adapter, "adapter", "a", "", "the adapter of --config")
	c.Flags().BoolVar(&f.json, "json", false, "print the admin API's JSON instead of a table")
}

// opError is a failed operation with the exit code a script reads.
type opError struct {
	code int
	err  error
}

func (e *opError) Error() string { return e.err.Error() }

var httpStatusRe = regexp.MustCompile(`HTTP (\d{3}): (.*)`)

// call makes one admin API request and decodes the JSON answer into v (and returns it raw).
func (f *adminFlags) call(method, uri string, v any) ([]byte, error) {
	addr, err := caddycmd.DetermineAdminAPIAddress(f.address, nil, f.config, f.adapter)
	if err != nil {
		return nil, &opError{exitBadArgs, err}
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, nil, nil)
	if err != nil {
		// the admin API's {"error": "..."} as the message, its status as the exit code
		if m := httpStatusRe.FindStringSubmatch(err.Error()); m != nil {
			msg := m[2]
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal([]byte(msg), &e) == nil && e.Error != "" {
				msg = e.Error
			}
			code := exitFailed
			switch m[1] {
			case "404":
				code = exitNotFound
			case "400":
				code = exitBadArgs
			}
			return nil, &opError{code, errors.New(msg)}
		}
		return nil, &opError{exitFailed, fmt.Errorf("admin API at %s: %v (is Caddy running?)", addr, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &opError{exitFailed, err}
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			return nil, &opError{exitFailed, fmt.Errorf("admin API answer: %v", err)}
		}
	}
	return body, nil
}

// run wraps a subcommand: its opError's code becomes the exit code.
func run(fn func() error) func(*cobra.Command, []string) error {
	return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) {
		err := fn()
		var oe *opError
		if errors.As(err, &oe) {
			return oe.code, oe.err
		}
		if err != nil {
			return exitFailed, err
		}
		return exitOK, nil
	})
}

// runArgs is run for a subcommand that takes arguments.
func runArgs(fn func(args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return run(func() error { return fn(args) })(cmd, args)
	}
}

// show prints the admin API's JSON with --json, else what human prints.
func (f *adminFlags) show(raw []byte, human func()) error {
	if f.json {
		_, err := os.Stdout.Write(raw)
		return err
	}
	human()
	return nil
}

// table prints rows under a header, aligned.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

type paymentsAnswer struct {
	Payments   []listedPayment `json:"payments"`
	NextCursor string          `json:"next_cursor"`
}

func paymentsCommand() *cobra.Command {
	var af adminFlags
	var state, site, order, since, until, cursor string
	var limit int
	c := &cobra.Command{
		Use:   "payments [--state S] [--site ID] [--order ID] [--since T] [--until T] [--limit N] [--cursor C] [--json]",
		Short: "List payments, newest first",
		Long: `List payments, newest first, from the stores of a running Caddy.

--since and --until bound the creation time: RFC 3339 (2026-11-25T12:00:00Z) or a date
(2026-11-25, midnight UTC). When there are more than --limit, the last line gives the --cursor
of the next page.

Exit codes: 0 listed, 1 failed, 2 bad arguments.`,
		Args: cobra.NoArgs,
	}
	af.register(c)
	c.Flags().StringVar(&state, "state", "", "only this state: init, pending, accepted, refused, mismatch, duplicate, expired, failed, unknown")
	c.Flags().StringVar(&site, "site", "", "only this site_id (or v1 account)")
	c.Flags().StringVar(&order, "order", "", "only this order (needs --site)")
	c.Flags().StringVar(&since, "since", "", "created at or after")
	c.Flags().StringVar(&until, "until", "", "created before")
	c.Flags().IntVar(&limit, "limit", 50, "at most this many (1 to 1000)")
	c.Flags().StringVar(&cursor, "cursor", "", "the page after the one that gave this cursor")
	c.RunE = run(func() error {
		q := url.Values{}
		for k, v := range map[string]string{"state": state, "site_id": site, "order_id": order, "since": since,
			"until": until, "cursor": cursor, "limit": strconv.Itoa(limit)} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var a paymentsAnswer
		raw, err := af.call(http.MethodGet, "/cinetpay/payments?"+q.Encode(), &a)
		if err != nil {
			return err
		}
		return af.show(raw, func() {
			rows := make([][]string, 0, len(a.Payments))
			for _, p := range a.Payments {
				rows = append(rows, []string{fmtTime(p.CreatedAt), p.SiteID, p.TransactionID, p.OrderID,
					strconv.FormatInt(p.Amount, 10) + " " + p.Currency, string(p.State), fmtTime(p.LastChange())})
			}
			table(os.Stdout, []string{"CREATED (UTC)", "SITE", "TRANSACTION", "ORDER", "AMOUNT", "STATE", "LAST CHANGE"}, rows)
			if a.NextCursor != "" {
				fmt.Printf("more: --cursor %s\n", a.NextCursor)
			}
		})
	})
	return c
}

type paymentAnswer struct {
	Payment    listedPayment      `json:"payment"`
	Deliveries []storage.Delivery `json:"deliveries"`
}

func paymentCommand() *cobra.Command {
	var af adminFlags
	var site string
	c := &cobra.Command{
		Use:   "payment TRANSACTION_ID [--site ID] [--json]",
		Short: "Show a payment: its state, history, deliveries and last check",
		Long: `Show a payment of a running Caddy: its state, what CinetPay confirmed, its history, its
deliveries and its last status call. Never a token or key.

Exit codes: 0 shown, 1 failed, 2 bad arguments, 3 no such payment.`,
		Args: cobra.ExactArgs(1),
	}
	af.register(c)
	c.Flags().StringVar(&site, "site", "", "its site_id (default: whichever configured site has it)")
	c.RunE = runArgs(func(args []string) error {
		var a paymentAnswer
		raw, err := af.call(http.MethodGet, "/cinetpay/payments/"+sitePath(site)+url.PathEscape(args[0]), &a)
		if err != nil {
			return err
		}
		return af.show(raw, func() {
			printPayment(os.Stdout, &a)
		})
	})
	return c
}

// sitePath is the site part of an admin path: "" for any site.
func sitePath(site string) string {
	if site == "" {
		return ""
	}
	return url.PathEscape(site) + "/"
}

func printPayment(w io.Writer, a *paymentAnswer) {
	p := a.Payment
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	line("transaction", p.TransactionID)
	line("site", p.SiteID)
	line("order", p.OrderID)
	line("amount", fmt.Sprintf("%d %s", p.Amount, p.Currency))
	line("state", string(p.State))
	line("environment", p.Environment)
	if p.ProviderTransactionID != "" {
		line("cinetpay id", p.ProviderTransactionID)
	}
	if c := p.Confirmed; c != nil {
		line("confirmed", strings.TrimSpace(fmt.Sprintf("%s %s %s %s %s", c.Amount, c.Currency, c.Status, c.PaymentMethod, c.PaymentDate)))
	}
	line("created", fmtTime(p.CreatedAt))
	line("last check", strings.TrimSpace(fmtTime(p.LastCheck)+" "+p.LastCheckResult))
	line("next check", fmtTime(p.NextCheck))
	line("storage", p.Storage)
	_ = tw.Flush()
	fmt.Fprintln(w, "\nhistory:")
	rows := [][]string{}
	for _, h := range p.History {
		rows = append(rows, []string{fmtTime(h.At), string(h.From) + " → " + string(h.To), h.Reason, h.EventID})
	}
	table(w, []string{"  AT (UTC)", "CHANGE", "REASON", "EVENT"}, indent(rows))
	fmt.Fprintln(w, "\ndeliveries:")
	rows = rows[:0]
	for _, d := range a.Deliveries {
		rows = append(rows, deliveryRow(&d)[1:])
	}
	table(w, []string{"  EVENT", "STATUS", "STATE", "ATTEMPTS", "LAST ATTEMPT", "LAST HTTP", "NEXT ATTEMPT"}, indent(rows))
}

func indent(rows [][]string) [][]string {
	for _, r := range rows {
		if len(r) > 0 {
			r[0] = "  " + r[0]
		}
	}
	return rows
}

func deliveryRow(d *storage.Delivery) []string {
	status := "-"
	if d.LastHTTPStatus != 0 {
		status = strconv.Itoa(d.LastHTTPStatus)
	}
	return []string{d.SiteID, d.ID, string(d.Status), string(d.State), strconv.Itoa(d.Attempts), fmtTime(d.LastAttempt), status,
		fmtTime(d.NextAttempt)}
}

func deliveriesCommand() *cobra.Command {
	var af adminFlags
	var state, site, tx string
	var limit int
	c := &cobra.Command{
		Use:   "deliveries [--state pending|delivered|failed] [--site ID] [--transaction ID] [--limit N] [--json]",
		Short: "List deliveries to the shop (pending ones soonest due first)",
		Long: `List the deliveries of results to the shop, from the stores of a running Caddy: pending
ones soonest due first. A delivery given up (failed) is kept: replay it once the shop is fixed.

Exit codes: 0 listed, 1 failed, 2 bad arguments.`,
		Args: cobra.NoArgs,
	}
	af.register(c)
	c.Flags().StringVar(&state, "state", "", "only this state: pending, delivered, failed")
	c.Flags().StringVar(&site, "site", "", "only this site_id")
	c.Flags().StringVar(&tx, "transaction", "", "only the deliveries of this transaction")
	c.Flags().IntVar(&limit, "limit", 50, "at most this many (1 to 1000)")
	c.RunE = run(func() error {
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		for k, v := range map[string]string{"state": state, "site_id": site, "transaction_id": tx} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var a struct {
			Deliveries []listedDelivery `json:"deliveries"`
		}
		raw, err := af.call(http.MethodGet, "/cinetpay/deliveries?"+q.Encode(), &a)
		if err != nil {
			return err
		}
		return af.show(raw, func() {
			rows := [][]string{}
			for _, d := range a.Deliveries {
				r := deliveryRow(&d.Delivery) // the site first, then the transaction
				rows = append(rows, append([]string{r[0], d.TransactionID}, r[1:]...))
			}
			table(os.Stdout, []string{"SITE", "TRANSACTION", "EVENT", "STATUS", "STATE", "ATTEMPTS", "LAST ATTEMPT", "LAST HTTP", "NEXT ATTEMPT"}, rows)
		})
	})
	return c
}

func replayCommand() *cobra.Command {
	var af adminFlags
	var site string
	c := &cobra.Command{
		Use:   "replay EVENT_ID [--site ID] [--json]",
		Short: "Deliver a result to the shop again",
		Long: `Put a delivery back in the queue, due now, for a new round of attempts (the same event id:
a shop that applied it already ignores it).

Exit codes: 0 queued, 1 failed, 2 bad arguments, 3 no such delivery.`,
		Args: cobra.ExactArgs(1),
	}
	af.register(c)
	c.Flags().StringVar(&site, "site", "", "its site_id (default: whichever configured site has it)")
	c.RunE = runArgs(func(args []string) error {
		var a struct {
			Delivery listedDelivery `json:"delivery"`
		}
		raw, err := af.call(http.MethodPost, "/cinetpay/deliveries/"+sitePath(site)+url.PathEscape(args[0])+"/replay", &a)
		if err != nil {
			return err
		}
		return af.show(raw, func() {
			fmt.Printf("delivery %s of %s (%s) queued for a new round of attempts\n", a.Delivery.ID, a.Delivery.TransactionID, a.Delivery.Status)
		})
	})
	return c
}

func recheckCommand() *cobra.Command {
	var af adminFlags
	var site string
	c := &cobra.Command{
		Use:   "recheck TRANSACTION_ID [--site ID] [--json]",
		Short: "Ask CinetPay about a payment now",
		Long: `Make the status call of a payment now and store what it says (within the site's rate budget).

Exit codes: 0 checked (or settled already), 1 failed (CinetPay gave no usable answer), 2 bad
arguments, 3 no such payment.`,
		Args: cobra.ExactArgs(1),
	}
	af.register(c)
	c.Flags().StringVar(&site, "site", "", "its site_id (default: whichever configured site has it)")
	c.RunE = runArgs(func(args []string) error {
		var a struct {
			Payment listedPayment `json:"payment"`
			Checked bool          `json:"checked"`
			Changed bool          `json:"changed"`
			Note    string        `json:"note"`
		}
		raw, err := af.call(http.MethodPost, "/cinetpay/payments/"+sitePath(site)+url.PathEscape(args[0])+"/recheck", &a)
		if err != nil {
			return err
		}
		return af.show(raw, func() {
			switch {
			case !a.Checked:
				fmt.Printf("%s: %s (%s)\n", a.Payment.TransactionID, a.Payment.State, a.Note)
			case a.Changed:
				fmt.Printf("%s: now %s (%s)\n", a.Payment.TransactionID, a.Payment.State, a.Payment.LastCheckResult)
			default:
				fmt.Printf("%s: still %s (%s)\n", a.Payment.TransactionID, a.Payment.State, a.Payment.LastCheckResult)
			}
		})
	})
	return c
}

// exportColumns are the columns of `caddy cinetpay export`, one row per payment.
var exportColumns = []string{"site_id", "transaction_id", "cinetpay_transaction_id", "order_id", "environment", "state",
	"amount", "currency", "confirmed_amount", "confirmed_currency", "cinetpay_status", "payment_method", "operator_id",
	"payment_date", "created_at", "last_change"}

func exportRow(p *storage.Payment) []string {
	var c storage.Confirmation
	if p.Confirmed != nil {
		c = *p.Confirmed
	}
	return []string{p.SiteID, p.TransactionID, p.ProviderTransactionID, p.OrderID, p.Environment, string(p.State),
		strconv.FormatInt(p.Amount, 10), p.Currency, c.Amount, c.Currency, c.Status, c.PaymentMethod, c.OperatorID,
		c.PaymentDate, p.CreatedAt.UTC().Format(time.RFC3339), p.LastChange().UTC().Format(time.RFC3339)}
}

func exportCommand() *cobra.Command {
	var af adminFlags
	var since, until, format, site string
	c := &cobra.Command{
		Use:   "export --since T --until T [--format csv|json] [--site ID]",
		Short: "Export the payments of a period, for reconciliation with CinetPay's back office",
		Long: `Export every payment created in [--since, --until), newest first, one row per payment with its
amounts asked and confirmed, states, dates and CinetPay's ids: CSV (a header line, then the
rows) or JSON (an array). Totals of the accepted payments, by currency, go to stderr.

Exit codes: 0 exported, 1 failed, 2 bad arguments.`,
		Args: cobra.NoArgs,
	}
	af.register(c)
	c.Flags().StringVar(&since, "since", "", "created at or after (RFC 3339 or a date); required")
	c.Flags().StringVar(&until, "until", "", "created before (RFC 3339 or a date); required")
	c.Flags().StringVar(&format, "format", "csv", "csv or json")
	c.Flags().StringVar(&site, "site", "", "only this site_id")
	c.RunE = run(func() error {
		if since == "" || until == "" {
			return &opError{exitBadArgs, errors.New("--since and --until are required")}
		}
		if format != "csv" && format != "json" {
			return &opError{exitBadArgs, fmt.Errorf("--format %q: want csv or json", format)}
		}
		q := url.Values{"since": {since}, "until": {until}, "limit": {strconv.Itoa(maxLimit)}}
		if site != "" {
			q.Set("site_id", site)
		}
		var all []storage.Payment
		for {
			var a paymentsAnswer
			if _, err := af.call(http.MethodGet, "/cinetpay/payments?"+q.Encode(), &a); err != nil {
				return err
			}
			for _, p := range a.Payments {
				all = append(all, p.Payment)
			}
			if a.NextCursor == "" {
				break
			}
			q.Set("cursor", a.NextCursor)
		}
		totals := map[string]int64{}
		for _, p := range all {
			if p.State == storage.StateAccepted {
				totals[p.Currency] += p.Amount
			}
		}
		if format == "json" {
			rows := make([]map[string]string, len(all))
			for i := range all {
				rows[i] = map[string]string{}
				for j, v := range exportRow(&all[i]) {
					rows[i][exportColumns[j]] = v
				}
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(rows); err != nil {
				return err
			}
		} else {
			w := csv.NewWriter(os.Stdout)
			_ = w.Write(exportColumns)
			for i := range all {
				_ = w.Write(exportRow(&all[i]))
			}
			w.Flush()
			if err := w.Error(); err != nil {
				return err
			}
		}
		currencies := make([]string, 0, len(totals))
		for c := range totals {
			currencies = append(currencies, c)
		}
		sort.Strings(currencies)
		parts := []string{fmt.Sprintf("%d payments", len(all))}
		for _, c := range currencies {
			parts = append(parts, fmt.Sprintf("accepted %d %s", totals[c], c))
		}
		fmt.Fprintln(os.Stderr, strings.Join(parts, "; "))
		return nil
	})
	return c
}

func keygenCommand() *cobra.Command {
	var id string
	var whsec bool
	c := &cobra.Command{
		Use:   "keygen [--id KEY_ID] | keygen --whsec < KEY_FILE",
		Short: "Make a signing key for the results sent to the shop",
		Long: `Print a new random signing key (32 bytes, base64url: 43 characters), once, as the signing_key
line of a Caddyfile, followed by a comment giving the same key in its Standard Webhooks form
(whsec_…), the secret a shop's Standard Webhooks library takes with deliver_format
standard-webhooks. Give the key to the shop's verifier; keep it out of version control
(for instance {env.SIGNING_KEY}).

With --whsec, read an existing key from standard input (the key alone, a trailing newline
ignored) and print its whsec_ form only.`,
		Args: cobra.NoArgs,
	}
	c.Flags().StringVar(&id, "id", "shop1", "the key id (letters, digits, '.', '_' or '-')")
	c.Flags().BoolVar(&whsec, "whsec", false, "print the Standard Webhooks secret of the key on standard input")
	c.RunE = run(func() error {
		if whsec {
			b, err := io.ReadAll(io.LimitReader(os.Stdin, 4096))
			if err != nil {
				return err
			}
			key := strings.TrimRight(string(b), "\r\n")
			if len(key) < minSigningKeyLen {
				return &opError{exitBadArgs, fmt.Errorf("--whsec: standard input holds %d bytes; a signing key has at least %d", len(key), minSigningKeyLen)}
			}
			fmt.Println(httpsig.WebhookSecret([]byte(key)))
			return nil
		}
		if !keyIDRe.MatchString(id) {
			return &opError{exitBadArgs, fmt.Errorf("--id %q: letters, digits, '.', '_' or '-', at most 64", id)}
		}
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		key := base64.RawURLEncoding.EncodeToString(b)
		fmt.Printf("signing_key %s %s\n", id, key)
		fmt.Printf("# with deliver_format standard-webhooks, the shop's secret: %s\n", httpsig.WebhookSecret([]byte(key)))
		return nil
	})
	return c
}
