package storage

// State is the state of one payment (README, "How it works").
//
//	INIT ─▶ PENDING ─▶ ACCEPTED | MISMATCH | DUPLICATE     (final, never change)
//	  │        │──▶ REFUSED ──▶ ACCEPTED (late success)
//	  │        └──▶ EXPIRED (48 h without a final answer) ──▶ ACCEPTED
//	  ├──▶ FAILED (definite refusal at start)
//	  └──▶ UNKNOWN (start call outcome unknown) ──▶ PENDING/ACCEPTED/REFUSED by /check
type State string

// The payment states.
const (
	// StateInit: stored before CinetPay is called; the call is in flight (or crashed).
	StateInit State = "INIT"
	// StatePending: CinetPay created the transaction; no final answer yet.
	StatePending State = "PENDING"
	// StateAccepted: /check confirmed the payment with the amount and currency asked.
	StateAccepted State = "ACCEPTED"
	// StateRefused: /check said REFUSED. A late success may still turn it ACCEPTED.
	StateRefused State = "REFUSED"
	// StateMismatch: /check confirmed a payment whose amount or currency differ from the ones asked.
	StateMismatch State = "MISMATCH"
	// StateDuplicate: a payment accepted for an order that another payment had already paid.
	StateDuplicate State = "DUPLICATE"
	// StateExpired: no final answer within the pending window (48 h).
	StateExpired State = "EXPIRED"
	// StateFailed: CinetPay definitely refused to start the payment; nothing exists there.
	StateFailed State = "FAILED"
	// StateUnknown: the start call's outcome is unknown (timeout, 5xx); re-checked like a pending one.
	StateUnknown State = "UNKNOWN"
)

// States lists every state, in the order of the README ("How it works").
var States = []State{StateInit, StatePending, StateAccepted, StateRefused, StateMismatch,
	StateDuplicate, StateExpired, StateFailed, StateUnknown}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Final reports whether s is immutable: ACCEPTED, MISMATCH and DUPLICATE never change.
func (s State) Final() bool {
	return s == StateAccepted || s == StateMismatch || s == StateDuplicate
}

// Delivers reports whether entering s causes one delivery to the shop.
func (s State) Delivers() bool {
	switch s {
	case StateAccepted, StateRefused, StateMismatch, StateDuplicate, StateExpired:
		return true
	}
	return false
}

// Open reports whether CinetPay may still settle the payment, so the module keeps checking it.
func (s State) Open() bool {
	return s == StateInit || s == StatePending || s == StateUnknown
}

// paidStates are the outcomes of a /check that found money taken.
var paidStates = []State{StateAccepted, StateMismatch, StateDuplicate}

// transitions is the state machine of the README. A /check that finds money taken may end in
// ACCEPTED, MISMATCH (amount or currency differ) or DUPLICATE (order already paid), so every
// arrow into ACCEPTED also allows the other two.
var transitions = map[State][]State{
	StateInit:    {StatePending, StateFailed, StateUnknown},
	StatePending: append([]State{StateRefused, StateExpired}, paidStates...),
	// UNKNOWN → FAILED: CinetPay, asked after the start grace, does not know the transaction
	StateUnknown: append([]State{StatePending, StateRefused, StateExpired, StateFailed}, paidStates...),
	StateRefused: paidStates,
	StateExpired: paidStates,
}

// CanTransition reports whether a payment may go from one state to another.
func CanTransition(from, to State) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}
