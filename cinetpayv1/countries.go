package cinetpayv1

import "sort"

// Country is a country CinetPay's current API serves. One account (api_key and api_password)
// belongs to one country, whose currency its payments use and whose calling code its
// customers' phone numbers carry.
type Country struct {
	Code        string // ISO 3166 alpha-2: "CI"
	Name        string
	Currency    string // "XOF"
	CallingCode string // "+225"
}

// countries is the table of CinetPay's 2026 SDKs (PHP v3 Country enum).
var countries = map[string]Country{
	"CI": {"CI", "Côte d'Ivoire", "XOF", "+225"},
	"BF": {"BF", "Burkina Faso", "XOF", "+226"},
	"ML": {"ML", "Mali", "XOF", "+223"},
	"SN": {"SN", "Sénégal", "XOF", "+221"},
	"TG": {"TG", "Togo", "XOF", "+228"},
	"GN": {"GN", "Guinée", "GNF", "+224"},
	"CM": {"CM", "Cameroun", "XAF", "+237"},
	"BJ": {"BJ", "Bénin", "XOF", "+229"},
	"CD": {"CD", "RD Congo", "CDF", "+243"},
	"NE": {"NE", "Niger", "XOF", "+227"},
	"TD": {"TD", "Tchad", "XAF", "+235"},
	"CG": {"CG", "Congo", "XAF", "+242"},
	"CF": {"CF", "République centrafricaine", "XAF", "+236"},
	"GA": {"GA", "Gabon", "XAF", "+241"},
	"GQ": {"GQ", "Guinée équatoriale", "XAF", "+240"},
}

// LookupCountry returns the country with this ISO code (upper case).
func LookupCountry(code string) (Country, bool) {
	c, ok := countries[code]
	return c, ok
}

// CountryCodes lists the countries' codes, sorted.
func CountryCodes() []string {
	out := make([]string, 0, len(countries))
	for k := range countries {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
