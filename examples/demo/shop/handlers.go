package shop

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-cinetpay/caddy-cinetpay/httpsig"
)

// errTooManyOrders keeps a flood of checkouts from growing the file without end.
var errTooManyOrders = errors.New("too many orders")

// serveHome serves the shop page.
func (s *Shop) serveHome(w http.ResponseWriter, r *http.Request) error {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return nil
	}
	render(w, r, http.StatusOK, homeTmpl, "home_title", priceIn(pageLang(w, r), productAmount, productCurrency))
	return nil
}

// serveCheckout creates an order and answers with the Cinetpay-* headers that ask the cinetpay
// module in front to start its payment (README, "1. Checkout").
//
// With a form field order naming an order still awaiting its payment (the return page's and the
// orders page's "Resume payment"), it answers with that order's headers again instead: the
// module then sends the customer back to the same payment page while it is open (README, "1.
// Checkout": "resubmitting while its payment is pending … sends the customer back to the same
// payment page"). A real shop would also check that the order is the customer's (its session).
func (s *Shop) serveCheckout(w http.ResponseWriter, r *http.Request) error {
	if !allow(w, r, http.MethodPost) {
		return nil
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	var o *Order
	if id := r.PostFormValue("order"); id != "" {
		s.store.view(func(st *state) {
			if cur := st.Orders[id]; cur != nil && cur.Status == OrderPending {
				c := *cur
				o = &c
			}
		})
	}
	if o != nil {
		s.logger.Info("order resumed", zap.String("order_id", o.ID))
	} else {
		now := time.Now().UTC()
		o = &Order{ID: randomID("ord_"), Product: productName, Amount: productAmount,
			Currency: productCurrency, Status: OrderPending, CreatedAt: now, UpdatedAt: now}
		err := s.store.update(func(st *state) error {
			if len(st.Orders) >= maxOrders {
				return errTooManyOrders
			}
			st.Orders[o.ID] = o
			return nil
		})
		if errors.Is(err, errTooManyOrders) {
			http.Error(w, "the demo shop holds too many orders: reset its data directory", http.StatusServiceUnavailable)
			return nil
		} else if err != nil {
			s.logger.Error("storing an order", zap.Error(err))
			http.Error(w, "could not store the order", http.StatusInternalServerError)
			return nil
		}
		s.logger.Info("order created", zap.String("order_id", o.ID))
	}

	h := w.Header()
	h.Set("Cinetpay-Amount", strconv.FormatInt(o.Amount, 10))
	h.Set("Cinetpay-Order-Id", o.ID)
	h.Set("Cinetpay-Currency", o.Currency)
	// Text may be percent-encoded UTF-8 (the module decodes it).
	h.Set("Cinetpay-Description", pctEncode(o.Product))
	// Made-up customer fields: card payments need them; a real shop sends its customer's.
	h.Set("Cinetpay-Customer-Id", "demo-customer-1")
	h.Set("Cinetpay-Customer-Name", "Kouassi")
	h.Set("Cinetpay-Customer-Surname", "Adjoua")
	h.Set("Cinetpay-Customer-Email", "adjoua.kouassi@example.test")
	h.Set("Cinetpay-Customer-Phone-Number", "+2250700000000")
	h.Set("Cinetpay-Customer-Address", pctEncode("Rue des Jardins, Cocody"))
	h.Set("Cinetpay-Customer-City", "Abidjan")
	h.Set("Cinetpay-Customer-Country", "CI")
	h.Set("Cinetpay-Customer-State", "CI")
	h.Set("Cinetpay-Customer-Zip-Code", "00225")
	h.Set("Cinetpay-Metadata", pctEncode("demo-shop order "+o.ID))
	// the payment page in the customer's language
	h.Set("Cinetpay-Lang", pageLang(w, r))
	h.Set("Cache-Control", "no-store")
	// This body is dropped by the cinetpay module; a browser only sees it when the module is
	// not in front (the shop's own address opened directly).
	render(w, r, http.StatusOK, checkoutTmpl, "checkout_title", o)
	return nil
}

// pctEncode percent-encodes s for a header value (UTF-8, spaces as %20).
func pctEncode(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// Statuses a delivery can carry (README, "How it works"; PENDING only on return pages).
var deliveryStatuses = []string{"ACCEPTED", "REFUSED", "EXPIRED", "MISMATCH", "DUPLICATE"}

// serveWebhook receives a delivery: verify, compare with the order, apply once.
func (s *Shop) serveWebhook(w http.ResponseWriter, r *http.Request) error {
	if !allow(w, r, http.MethodPost) {
		return nil
	}
	// Deliveries have no body: the signed headers are the whole message.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<10))
	now := time.Now().UTC()

	res, err := s.notify.Verify(r)
	if err != nil {
		// Keep a trace of what was refused (the values are unverified claims), in memory only:
		// anyone can post here, and a flood must neither write to disk nor hold up real
		// deliveries.
		s.store.reject(Delivery{At: now, EventID: clip(r.Header.Get(httpsig.HeaderEventID)),
			OrderID: clip(r.Header.Get(httpsig.HeaderOrderID)), Status: clip(r.Header.Get(httpsig.HeaderStatus)),
			Outcome: OutcomeRejected, Detail: clipN(err.Error(), 240), HTTPStatus: http.StatusUnauthorized})
		s.logger.Warn("delivery rejected", zap.Error(err))
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return nil
	}

	d := Delivery{At: now, EventID: res.EventID, OrderID: res.OrderID, TransactionID: res.TransactionID,
		Status: res.Status, Amount: res.Amount, Currency: res.Currency, Verified: true}
	err = s.store.update(func(st *state) error {
		d.Outcome, d.Detail, d.HTTPStatus = apply(st, res, now)
		st.addDelivery(d)
		return nil
	})
	if err != nil {
		// Nothing was applied: answer non-2xx so the module delivers it again.
		s.logger.Error("storing a delivery", zap.String("event_id", res.EventID), zap.Error(err))
		http.Error(w, "could not store the delivery", http.StatusInternalServerError)
		return nil
	}
	s.logger.Info("delivery", zap.String("event_id", d.EventID), zap.String("order_id", d.OrderID),
		zap.String("status", d.Status), zap.String("outcome", d.Outcome), zap.String("detail", d.Detail))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(d.HTTPStatus)
	fmt.Fprintln(w, d.Outcome)
	return nil
}

// apply applies a verified delivery to the state and says what it did. The caller writes the
// state (the order's change and the event id together) in one atomic write.
func apply(st *state, res *httpsig.Result, now time.Time) (outcome, detail string, status int) {
	if _, seen := st.Events[res.EventID]; seen {
		return OutcomeAlreadyApplied, "event already applied: not applied again", http.StatusOK
	}
	if !slices.Contains(deliveryStatuses, res.Status) {
		// Not marked applied: a newer module may send what this shop does not know yet.
		return OutcomeIgnored, "unexpected status " + res.Status, http.StatusUnprocessableEntity
	}
	o := st.Orders[res.OrderID]
	if o == nil {
		// Not marked applied: the module retries, and an operator can replay it once the
		// order is restored.
		return OutcomeUnknownOrder, "no such order in this shop", http.StatusNotFound
	}
	st.Events[res.EventID] = appliedEvent{OrderID: o.ID, At: now}
	o.Events = append(o.Events, res.EventID)

	// The shop compares the result with its own order, whatever the status says.
	if res.Amount != strconv.FormatInt(o.Amount, 10) || res.Currency != o.Currency {
		differs := fmt.Sprintf("%s for %s %s, the order is %d %s", res.Status, res.Amount, res.Currency,
			o.Amount, o.Currency)
		if res.Status == "REFUSED" || res.Status == "EXPIRED" {
			// no money taken: nothing to review, and the order stays payable
			return OutcomeIgnored, "amount or currency differs from the order: " + differs, http.StatusOK
		}
		flag(o, now, res, differs)
		return OutcomeApplied, "flagged: amount or currency differs from the order", http.StatusOK
	}
	switch res.Status {
	case "ACCEPTED":
		switch o.Status {
		case OrderPending, OrderRefused, OrderExpired:
			set(o, OrderPaid, now, res.TransactionID)
			return OutcomeApplied, "order paid", http.StatusOK
		case OrderPaid:
			if o.Transaction == res.TransactionID {
				return OutcomeIgnored, "order already paid by this transaction", http.StatusOK
			}
			flag(o, now, res, "paid twice: refund transaction "+res.TransactionID)
			return OutcomeApplied, "flagged: paid twice", http.StatusOK
		default: // flagged: a person decides
			return OutcomeIgnored, "order is flagged: left for review", http.StatusOK
		}
	case "REFUSED", "EXPIRED":
		next := OrderRefused
		if res.Status == "EXPIRED" {
			next = OrderExpired
		}
		switch o.Status {
		case OrderPending, OrderRefused, OrderExpired:
			set(o, next, now, res.TransactionID)
			return OutcomeApplied, "order " + next, http.StatusOK
		default:
			return OutcomeIgnored, "order already " + o.Status + ": not changed", http.StatusOK
		}
	case "MISMATCH":
		flag(o, now, res, "CinetPay confirmed another amount or currency than the payment started")
		return OutcomeApplied, "flagged: mismatch", http.StatusOK
	default: // DUPLICATE
		flag(o, now, res, "paid twice: refund transaction "+res.TransactionID)
		return OutcomeApplied, "flagged: duplicate payment", http.StatusOK
	}
}

func set(o *Order, status string, now time.Time, txid string) {
	o.Status, o.UpdatedAt, o.Transaction = status, now, txid
}

// flag records a result that needs a person. A paid order stays paid, with the transaction that
// paid it (a duplicate payment or a mismatch on another transaction does not undo the payment
// the shop already has); any other order becomes flagged.
func flag(o *Order, now time.Time, res *httpsig.Result, reason string) {
	o.Flags = append(o.Flags, Flag{EventID: res.EventID, TransactionID: res.TransactionID,
		Status: res.Status, Reason: reason, At: now})
	o.FlagReason = reason
	o.UpdatedAt = now
	if o.Status != OrderPaid {
		set(o, OrderFlagged, now, res.TransactionID)
	}
}

// clip bounds an unverified header value kept in the rejected list.
func clip(s string) string { return clipN(s, 80) }

// clipN bounds s to n bytes (the verifier's reason quotes unverified values too).
func clipN(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// serveReturn shows the verified status of the customer's payment and the order as the shop
// recorded it: "confirmed" only once the shop's record is paid (the delivery may land a moment
// after the customer). It never changes the order: deliveries do that.
func (s *Shop) serveReturn(w http.ResponseWriter, r *http.Request) error {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return nil
	}
	lang := pageLang(w, r)
	t := texts[lang]
	res, err := s.ret.Verify(r)
	if err != nil {
		data := returnData{Status: "UNVERIFIED", Tone: "warn", Title: t["ret_unverified_title"],
			Text: t["ret_unverified_text"]}
		code := http.StatusBadRequest
		if errors.Is(err, httpsig.ErrMissing) {
			data.Status, data.Title, data.Text = "UNKNOWN", t["ret_unknown_title"], t["ret_unknown_text"]
			code = http.StatusNotFound
		}
		s.logger.Warn("return page not verified", zap.Error(err))
		render(w, r, code, returnTmpl, "", data)
		return nil
	}
	var order *Order
	s.store.view(func(st *state) {
		if o := st.Orders[res.OrderID]; o != nil {
			c := *o
			order = &c
		}
	})
	data := returnView(lang, res, order)
	data.URL = r.URL.RequestURI()
	render(w, r, http.StatusOK, returnTmpl, "", data)
	return nil
}

// returnView is how a return page shows a verified result beside the shop's own record of
// the order.
func returnView(lang string, res *httpsig.Result, order *Order) returnData {
	t := texts[lang]
	d := returnData{Status: res.Status, Result: res, Order: order}
	set := func(tone, key string) {
		d.Tone, d.Title, d.Text = tone, t["ret_"+key+"_title"], t["ret_"+key+"_text"]
	}
	switch {
	case order == nil:
		set("warn", "noorder")
	case res.Amount != strconv.FormatInt(order.Amount, 10) || res.Currency != order.Currency:
		set("warn", "differs")
		reported := res.Amount + " " + res.Currency
		if n, err := strconv.ParseInt(res.Amount, 10, 64); err == nil {
			reported = priceIn(lang, n, res.Currency)
		}
		d.Text = fmt.Sprintf(d.Text, reported, priceIn(lang, order.Amount, order.Currency))
	case res.Status == "DUPLICATE":
		set("warn", "twice")
	case res.Status == "MISMATCH":
		set("warn", "review")
	case order.Status == OrderPaid:
		set("ok", "confirmed")
	case order.Status == OrderFlagged:
		set("warn", "review")
	case res.Status == "ACCEPTED":
		// CinetPay's word, verified by Caddy, but not yet the shop's: its delivery is on its way
		set("wait", "received")
		d.Pending = true
	case res.Status == "PENDING":
		set("wait", "pending")
		d.Pending = true
		d.Resume = order.Status == OrderPending
	case res.Status == "REFUSED":
		set("bad", "refused")
		d.Retry = true
	case res.Status == "EXPIRED":
		set("bad", "expired")
		d.Retry = true
	default:
		set("warn", "other")
	}
	return d
}

// refresh is how often a waiting return page reloads itself: soon after an accepted payment
// (its delivery is on its way), less often while CinetPay has no result (the module checks
// at most every 15 s, README "3. The return page"), leaving time to click "Resume payment".
func (d returnData) refresh() int {
	if d.Status == "ACCEPTED" {
		return 3
	}
	return 10
}

// ordersView is the orders page's and orders.json's content.
type ordersView struct {
	Orders     []orderView `json:"orders"`
	Rejected   []Delivery  `json:"rejected"`
	Deliveries int         `json:"deliveries"`
}

type orderView struct {
	Order
	Price      string     `json:"-"`
	Deliveries []Delivery `json:"deliveries"`
}

func (s *Shop) orders() ordersView {
	v := ordersView{Orders: []orderView{}}
	s.store.view(func(st *state) {
		byOrder := map[string][]Delivery{}
		for _, d := range st.Deliveries {
			byOrder[d.OrderID] = append(byOrder[d.OrderID], d)
		}
		for _, o := range st.Orders {
			v.Orders = append(v.Orders, orderView{Order: *o, Price: formatAmount(o.Amount, o.Currency),
				Deliveries: append([]Delivery{}, byOrder[o.ID]...)})
		}
		v.Deliveries = len(st.Deliveries)
	})
	v.Rejected = s.store.rejectedDeliveries()
	// newest first
	slices.SortFunc(v.Orders, func(a, b orderView) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	slices.Reverse(v.Rejected)
	return v
}

// serveOrders shows the orders and the deliveries received.
func (s *Shop) serveOrders(w http.ResponseWriter, r *http.Request) error {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return nil
	}
	render(w, r, http.StatusOK, ordersTmpl, "orders_title", s.orders())
	return nil
}

// serveOrdersJSON is the orders page as JSON, for tests and curious people.
func (s *Shop) serveOrdersJSON(w http.ResponseWriter, r *http.Request) error {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return nil
	}
	b, err := json.MarshalIndent(s.orders(), "", "  ")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// formatAmount writes 5000 XOF as "5 000 FCFA".
func formatAmount(n int64, currency string) string {
	digits := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteString("\u202f") // narrow no-break space, as in French
		}
		b.WriteRune(c)
	}
	switch currency {
	case "XOF", "XAF":
		currency = "FCFA"
	}
	return b.String() + " " + currency
}
