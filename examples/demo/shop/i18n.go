package shop

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Each page is in one language: French by default, English with ?lang=en (kept in a cookie
// for the next pages). Every page has an FR | EN switch.
const (
	langCookie  = "lang"
	defaultLang = "fr"
)

// words is one language's wording of the pages, by key.
type words map[string]string

// texts are the pages' words in each language. Both languages have the same keys (tested).
// Statuses are shown in words, never as their codes: order_<status> for the shop's record,
// result_<Cinetpay-Status> for the verified result, outcome_<outcome> for what a delivery did.
var texts = map[string]words{
	"fr": {
		"nav_label":     "Menu",
		"nav_shop":      "Boutique",
		"nav_orders":    "Mes commandes",
		"lang_label":    "Langue",
		"demo_banner":   "Démo hors ligne : paiements via le bac à sable CinetPay local, aucun argent réel.",
		"footer_before": "Boutique de démonstration de",
		"footer_after":  " : Caddy démarre le paiement à partir de la réponse de la boutique, vérifie les notifications de CinetPay et livre ici des résultats signés.",

		"home_title":    "Boutique",
		"home_h1":       "Tissus wax d'Abidjan",
		"home_sub":      "Imprimés en Côte d'Ivoire. Un produit, un bouton : essayez un paiement.",
		"product_name":  "Tissu wax — pagne 6 yards",
		"product_img":   "Tissu wax : motifs de cercles orange, vert et rouge",
		"product_li1":   "100 % coton, 6 yards (5,5 m)",
		"product_li2":   "Motifs imprimés des deux côtés",
		"product_li3":   "Livraison à Abidjan sous 48 h",
		"pay":           "Payer",
		"home_fine":     "Mobile money, carte ou portefeuille via CinetPay. Après le paiement vous revenez ici ;",
		"home_fine_lnk": "vos commandes",
		"home_fine_end": "montrent ce que la boutique a reçu.",

		"checkout_title": "Paiement",
		"checkout_big":   "Redirection vers le paiement…",
		"checkout_text":  "La commande est créée. Si vous lisez ceci, la boutique a été ouverte sans le module cinetpay de Caddy devant elle : c'est lui qui transforme cette réponse en redirection vers la page de paiement.",
		"back_shop":      "Retour à la boutique",
		"my_orders":      "Mes commandes",

		"ret_unverified_title": "Résultat non vérifié",
		"ret_unverified_text":  "Cette page n'a pas pu vérifier le résultat du paiement : elle n'en montre aucun. Vos commandes montrent ce que la boutique a reçu.",
		"ret_unknown_title":    "Paiement inconnu",
		"ret_unknown_text":     "Aucun résultat de paiement n'accompagne ce lien.",
		"ret_noorder_title":    "Commande inconnue",
		"ret_noorder_text":     "Le résultat du paiement est authentique, mais cette boutique n'a pas cette commande.",
		"ret_differs_title":    "Montant différent",
		"ret_differs_text":     "CinetPay indique %s ; la commande est de %s. La boutique va vérifier.",
		"ret_confirmed_title":  "Commande confirmée",
		"ret_confirmed_text":   "Paiement reçu et enregistré par la boutique : votre commande est confirmée. Merci !",
		"ret_received_title":   "Paiement reçu, confirmation en cours",
		"ret_received_text":    "CinetPay a accepté votre paiement ; la boutique ne l'a pas encore enregistré. Cette page se met à jour toute seule.",
		"ret_pending_title":    "Paiement en attente",
		"ret_pending_text":     "CinetPay n'a pas encore confirmé votre paiement. Si vous ne l'avez pas terminé, reprenez-le. Cette page se met à jour toute seule.",
		"ret_refused_title":    "Paiement refusé",
		"ret_refused_text":     "Aucun argent n'a été prélevé. Vous pouvez réessayer.",
		"ret_expired_title":    "Paiement expiré",
		"ret_expired_text":     "Le paiement n'a pas été terminé à temps. Aucun argent n'a été prélevé. Vous pouvez réessayer.",
		"ret_review_title":     "Vérification nécessaire",
		"ret_review_text":      "Ce paiement doit être vérifié par la boutique, qui vous contactera.",
		"ret_twice_title":      "Payé deux fois",
		"ret_twice_text":       "Cette commande était déjà payée : le second paiement vous sera remboursé.",
		"ret_other_title":      "Résultat inattendu",
		"ret_other_text":       "La boutique va vérifier ce paiement.",
		"ret_verified":         "Résultat vérifié (signé par Caddy)",
		"ret_fine":             "Cette page montre le résultat que Caddy a signé pour elle et la commande telle que la boutique l'a enregistrée ; la commande ne change qu'à la réception du résultat signé (voir vos commandes).",
		"resume":               "Reprendre le paiement",
		"refresh":              "Actualiser",
		"try_again":            "Réessayer",
		"f_order":              "Commande",
		"f_amount":             "Montant",
		"f_transaction":        "Transaction",
		"f_method":             "Moyen de paiement",
		"f_record":             "Dossier de la boutique",
		"f_env":                "Environnement",
		"env_sandbox":          "bac à sable (test)",
		"env_live":             "réel",

		"orders_title":    "Commandes",
		"orders_h1":       "Mes commandes",
		"orders_sub":      "Chaque commande avec le statut vérifié par la boutique, et chaque résultat que Caddy a livré à la boutique.",
		"orders_empty":    "Aucune commande pour l'instant.",
		"orders_buy":      "Acheter quelque chose",
		"f_created":       "Créée le",
		"f_deliveries":    "Résultats reçus",
		"none_yet":        "aucun pour l'instant",
		"verified":        "signature vérifiée",
		"event":           "événement",
		"rejected_h2":     "Résultats rejetés",
		"rejected_sub":    "Les derniers depuis le démarrage de Caddy : gardés en mémoire seulement, jamais écrits sur le disque.",
		"f_received":      "Reçu le",
		"f_claimed_order": "Commande annoncée",
		"f_claimed":       "Statut annoncé",
		"f_reason":        "Motif (message du vérificateur)",
		"flag_twice":      "Payée deux fois : rembourser la transaction %s",
		"flag_mismatch":   "CinetPay a confirmé un autre montant ou une autre devise : à vérifier",
		"flag_amount":     "Montant ou devise différents de la commande : à vérifier",
		"flag_other":      "À vérifier",

		"notfound_title": "Page introuvable",
		"notfound_text":  "Cette page n'existe pas.",

		"order_pending": "En attente de paiement",
		"order_paid":    "Payée",
		"order_refused": "Paiement refusé",
		"order_expired": "Paiement expiré",
		"order_flagged": "À vérifier",

		"result_ACCEPTED":  "Paiement accepté",
		"result_REFUSED":   "Paiement refusé",
		"result_EXPIRED":   "Paiement expiré",
		"result_PENDING":   "En attente",
		"result_MISMATCH":  "Montant différent",
		"result_DUPLICATE": "Payé deux fois",

		"outcome_applied":         "appliqué",
		"outcome_already-applied": "déjà appliqué, pas appliqué à nouveau",
		"outcome_ignored":         "sans effet sur la commande",
		"outcome_unknown-order":   "commande inconnue",
		"outcome_rejected":        "rejeté",

		"unknown_status": "Statut inconnu",
	},
	"en": {
		"nav_label":     "Menu",
		"nav_shop":      "Shop",
		"nav_orders":    "My orders",
		"lang_label":    "Language",
		"demo_banner":   "Offline demo: payments through the local CinetPay sandbox, no real money.",
		"footer_before": "Demo shop of",
		"footer_after":  ": Caddy starts the payment from this shop's answer, verifies CinetPay's notifications and delivers signed results here.",

		"home_title":    "Shop",
		"home_h1":       "Wax fabrics from Abidjan",
		"home_sub":      "Printed in Côte d'Ivoire. One product, one button: try a payment.",
		"product_name":  "Wax fabric — 6-yard pagne",
		"product_img":   "Wax fabric: orange, green and red circle patterns",
		"product_li1":   "100% cotton, 6 yards (5.5 m)",
		"product_li2":   "Printed on both sides",
		"product_li3":   "Delivery in Abidjan within 48 h",
		"pay":           "Pay",
		"home_fine":     "Mobile money, card or wallet through CinetPay. After paying you come back here;",
		"home_fine_lnk": "your orders",
		"home_fine_end": "show what the shop received.",

		"checkout_title": "Payment",
		"checkout_big":   "Redirecting to the payment…",
		"checkout_text":  "The order is created. If you can read this, the shop was opened without Caddy's cinetpay module in front of it: it is the module that turns this answer into the redirect to the payment page.",
		"back_shop":      "Back to the shop",
		"my_orders":      "My orders",

		"ret_unverified_title": "Result not verified",
		"ret_unverified_text":  "This page could not verify the payment result, so it shows none. Your orders show what the shop received.",
		"ret_unknown_title":    "Unknown payment",
		"ret_unknown_text":     "No payment result came with this link.",
		"ret_noorder_title":    "Unknown order",
		"ret_noorder_text":     "The payment result is genuine, but this shop has no such order.",
		"ret_differs_title":    "Amount differs",
		"ret_differs_text":     "CinetPay reports %s; the order is %s. The shop will check it.",
		"ret_confirmed_title":  "Order confirmed",
		"ret_confirmed_text":   "Payment received and recorded by the shop: your order is confirmed. Thank you!",
		"ret_received_title":   "Payment received, being confirmed",
		"ret_received_text":    "CinetPay accepted your payment; the shop has not recorded it yet. This page refreshes by itself.",
		"ret_pending_title":    "Payment pending",
		"ret_pending_text":     "CinetPay has not confirmed your payment yet. If you did not finish it, resume it. This page refreshes by itself.",
		"ret_refused_title":    "Payment refused",
		"ret_refused_text":     "No money was taken. You can try again.",
		"ret_expired_title":    "Payment expired",
		"ret_expired_text":     "The payment was not completed in time. No money was taken. You can try again.",
		"ret_review_title":     "Check needed",
		"ret_review_text":      "This payment must be checked by the shop, which will contact you.",
		"ret_twice_title":      "Paid twice",
		"ret_twice_text":       "This order was already paid: the second payment will be refunded.",
		"ret_other_title":      "Unexpected result",
		"ret_other_text":       "The shop will check this payment.",
		"ret_verified":         "Verified result (signed by Caddy)",
		"ret_fine":             "This page shows the result Caddy signed for it and the order as the shop recorded it; the order changes only when the shop receives the signed result (see your orders).",
		"resume":               "Resume payment",
		"refresh":              "Refresh",
		"try_again":            "Try again",
		"f_order":              "Order",
		"f_amount":             "Amount",
		"f_transaction":        "Transaction",
		"f_method":             "Payment method",
		"f_record":             "Shop's record",
		"f_env":                "Environment",
		"env_sandbox":          "sandbox (test)",
		"env_live":             "live",

		"orders_title":    "Orders",
		"orders_h1":       "My orders",
		"orders_sub":      "Each order with the status the shop verified, and every result Caddy delivered to the shop.",
		"orders_empty":    "No orders yet.",
		"orders_buy":      "Buy something",
		"f_created":       "Created",
		"f_deliveries":    "Results received",
		"none_yet":        "none yet",
		"verified":        "signature verified",
		"event":           "event",
		"rejected_h2":     "Rejected results",
		"rejected_sub":    "The latest ones since Caddy started: kept in memory only, never written to disk.",
		"f_received":      "Received",
		"f_claimed_order": "Claimed order",
		"f_claimed":       "Claimed status",
		"f_reason":        "Reason (the verifier's message)",
		"flag_twice":      "Paid twice: refund transaction %s",
		"flag_mismatch":   "CinetPay confirmed another amount or currency: to be checked",
		"flag_amount":     "Amount or currency differs from the order: to be checked",
		"flag_other":      "To be checked",

		"notfound_title": "Page not found",
		"notfound_text":  "This page does not exist.",

		"order_pending": "Awaiting payment",
		"order_paid":    "Paid",
		"order_refused": "Payment refused",
		"order_expired": "Payment expired",
		"order_flagged": "To be checked",

		"result_ACCEPTED":  "Payment accepted",
		"result_REFUSED":   "Payment refused",
		"result_EXPIRED":   "Payment expired",
		"result_PENDING":   "Pending",
		"result_MISMATCH":  "Amount differs",
		"result_DUPLICATE": "Paid twice",

		"outcome_applied":         "applied",
		"outcome_already-applied": "already applied, not applied again",
		"outcome_ignored":         "no change to the order",
		"outcome_unknown-order":   "unknown order",
		"outcome_rejected":        "rejected",

		"unknown_status": "Unknown status",
	},
}

// pageLang is the language of the page: ?lang=fr|en (remembered in a cookie), else the cookie,
// else French.
func pageLang(w http.ResponseWriter, r *http.Request) string {
	if l := r.URL.Query().Get("lang"); texts[l] != nil {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode})
		return l
	}
	if c, err := r.Cookie(langCookie); err == nil && texts[c.Value] != nil {
		return c.Value
	}
	return defaultLang
}

// switchURL is the current page in language l (the shop's page for a POST).
func switchURL(r *http.Request, l string) string {
	path, q := "/", url.Values{}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		path, q = r.URL.Path, r.URL.Query()
	}
	q.Set("lang", l)
	return path + "?" + q.Encode()
}

// word is T[prefix+code], or the words for an unknown status: codes are never shown as they are.
func word(t words, prefix, code string) string {
	if w, ok := t[prefix+code]; ok {
		return w
	}
	return t["unknown_status"]
}

// priceIn writes 5000 XOF as "5 000 FCFA" (French, narrow no-break spaces) or "5,000 FCFA".
func priceIn(lang string, n int64, currency string) string {
	if lang == "fr" {
		return formatAmount(n, currency)
	}
	digits := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	switch currency {
	case "XOF", "XAF":
		currency = "FCFA"
	}
	return b.String() + " " + currency
}

// flagWords says why an order needs a person, in the page's language.
func flagWords(t words, f Flag) string {
	switch {
	case strings.HasPrefix(f.Reason, "paid twice"):
		return strings.Replace(t["flag_twice"], "%s", f.TransactionID, 1)
	case strings.HasPrefix(f.Reason, "CinetPay confirmed another"):
		return t["flag_mismatch"]
	case strings.Contains(f.Reason, "the order is"):
		return t["flag_amount"]
	}
	return t["flag_other"]
}
