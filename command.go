package caddycinetpay

import (
	"errors"
	"fmt"
	"os"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-cinetpay/caddy-cinetpay/storage"
)

// The `caddy cinetpay` command, registered with Caddy's command registry.
func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "cinetpay",
		Short: "Operate the CinetPay module: payments, deliveries, exports, keys, stores",
		Long: `Operate the CinetPay module. Every subcommand but keygen and migrate speaks to the admin API of
a running Caddy (--address, or the admin address of --config, as caddy reload finds it).

  caddy cinetpay payments [--state S] [--since T] [--until T] ...   payments, newest first
  caddy cinetpay payment TRANSACTION_ID                             one payment in full
  caddy cinetpay deliveries [--state pending|delivered|failed]      deliveries to the shop
  caddy cinetpay replay EVENT_ID                                    deliver a result again
  caddy cinetpay recheck TRANSACTION_ID                             ask CinetPay now
  caddy cinetpay export --since T --until T [--format csv|json]     reconciliation
  caddy cinetpay keygen                                             a new signing key
  caddy cinetpay migrate --from DIR --to-env VAR                    Badger into PostgreSQL

Human tables by default, --json for scripts. Exit codes: 0 done, 1 failed, 2 bad arguments,
3 not found. See the README, "Operating it".`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(paymentsCommand(), paymentCommand(), deliveriesCommand(), replayCommand(),
				recheckCommand(), exportCommand(), keygenCommand(), migrateCommand())
		},
	})
}

// Exit codes of `caddy cinetpay` subcommands.
const (
	exitOK      = 0
	exitFailed  = 1 // the operation failed; what was done is printed
	exitBadArgs = 2 // nothing was done
	// exitNotFound (3): the payment or delivery named does not exist (command_ops.go)
)

func migrateCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "migrate --from <badger directory> --to <postgres DSN>",
		Short: "Copy a Badger store into PostgreSQL",
		Long: `Copy a Badger store into PostgreSQL: every payment with its history, every delivery
(pending ones are delivered by the instances on PostgreSQL), the order heads and the paid
markers, and the store's transaction id prefix, so that CinetPay's notifications of payments
started before the move are recognised.

Stop the Caddy using the Badger directory first (Badger allows one process per directory), and
start the instances on PostgreSQL after the copy. The copy can be run again, or resumed after it
stopped: what the database has already is left as it is, and counted.

The DSN may come from the environment: --to-env CINETPAY_DATABASE_URL. Its password is never
printed.

Exit codes: 0 copied, 1 failed (what was copied is printed), 2 bad arguments.`,
		Args: cobra.NoArgs,
	}
	from := c.Flags().String("from", "", "the Badger directory (the storage of the Caddyfile)")
	to := c.Flags().String("to", "", "the PostgreSQL DSN")
	toEnv := c.Flags().String("to-env", "", "the environment variable holding the PostgreSQL DSN")
	c.RunE = caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) {
		dsn := *to
		if *toEnv != "" {
			dsn = os.Getenv(*toEnv)
			if dsn == "" {
				return exitBadArgs, fmt.Errorf("--to-env %s: the variable is empty", *toEnv)
			}
		}
		if *from == "" || dsn == "" {
			return exitBadArgs, errors.New("--from and --to (or --to-env) are required")
		}
		if _, err := os.Stat(*from); err != nil {
			return exitBadArgs, fmt.Errorf("--from: %v", err)
		}
		src, err := storage.Open(*from, storage.Options{})
		if err != nil {
			return exitFailed, fmt.Errorf("%v (is a Caddy still using it? stop it first)", err)
		}
		defer src.Close()
		dst, err := storage.OpenPostgres(dsn, storage.PostgresOptions{})
		if err != nil {
			return exitFailed, err
		}
		defer dst.Close()
		fmt.Printf("copying %s (prefix %s) into %s\n", *from, src.Prefix(), storage.RedactDSN(dsn))
		last := 0
		counts, err := storage.MigrateBadger(src, dst, func(c storage.MigrateCounts) {
			if n := c.Payments + c.PaymentsThere; n-last >= 10000 {
				last = n
				fmt.Printf("  %s\n", c)
			}
		})
		fmt.Println(counts)
		if err != nil {
			return exitFailed, err
		}
		fmt.Printf("done: the database answers for prefix %s; start the instances with storage postgres\n", src.Prefix())
		return exitOK, nil
	})
	return c
}
