package httpsig

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file is a parser and serializer for the parts of RFC 8941 (Structured Field Values) that
// RFC 9421 uses: dictionaries whose members are inner lists or items, with parameters.

// sfItem is a bare item: a string, token, integer, decimal, byte sequence or boolean.
type sfItem struct {
	kind  byte // 's' string, 't' token, 'i' integer, 'd' decimal, 'b' bytes, '?' boolean
	str   string
	num   int64
	bytes []byte
	flag  bool
}

type sfParam struct {
	key string
	val sfItem
}

// sfMember is a dictionary member: an item or an inner list, with parameters.
type sfMember struct {
	isList bool
	item   sfItem
	list   []sfListItem
	params []sfParam
}

type sfListItem struct {
	item   sfItem
	params []sfParam
}

var errSF = errors.New("malformed structured field")

type sfParser struct {
	s string
	i int
}

func (p *sfParser) fail(what string) error {
	return fmt.Errorf("%w: %s at offset %d", errSF, what, p.i)
}

func (p *sfParser) eof() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) skipSP() {
	for !p.eof() && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for !p.eof() && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// parseDictionary parses an sf-dictionary. Later duplicates of a key replace earlier ones.
func parseDictionary(s string) (map[string]sfMember, error) {
	p := &sfParser{s: s}
	p.skipSP()
	out := map[string]sfMember{}
	if p.eof() {
		return out, nil
	}
	for {
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		var m sfMember
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				m.isList = true
				if m.list, err = p.parseInnerList(); err != nil {
					return nil, err
				}
			} else if m.item, err = p.parseBareItem(); err != nil {
				return nil, err
			}
		} else {
			m.item = sfItem{kind: '?', flag: true}
		}
		if m.params, err = p.parseParams(); err != nil {
			return nil, err
		}
		out[key] = m
		p.skipOWS()
		if p.eof() {
			return out, nil
		}
		if p.peek() != ',' {
			return nil, p.fail("expected ','")
		}
		p.i++
		p.skipOWS()
		if p.eof() {
			return nil, p.fail("trailing ','")
		}
	}
}

func (p *sfParser) parseKey() (string, error) {
	start := p.i
	c := p.peek()
	if !(c >= 'a' && c <= 'z' || c == '*') {
		return "", p.fail("bad key")
	}
	for !p.eof() {
		c := p.s[p.i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*' {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) parseInnerList() ([]sfListItem, error) {
	p.i++ // (
	var out []sfListItem
	for {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			return out, nil
		}
		if p.eof() {
			return nil, p.fail("unterminated inner list")
		}
		it, err := p.parseBareItem()
		if err != nil {
			return nil, err
		}
		params, err := p.parseParams()
		if err != nil {
			return nil, err
		}
		out = append(out, sfListItem{item: it, params: params})
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, p.fail("expected ' ' or ')'")
		}
	}
}

func (p *sfParser) parseParams() ([]sfParam, error) {
	var out []sfParam
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		key, err := p.parseKey()
		if err != nil {
			return nil, err
		}
		val := sfItem{kind: '?', flag: true}
		if p.peek() == '=' {
			p.i++
			if val, err = p.parseBareItem(); err != nil {
				return nil, err
			}
		}
		replaced := false
		for i := range out {
			if out[i].key == key {
				out[i].val, replaced = val, true
			}
		}
		if !replaced {
			out = append(out, sfParam{key, val})
		}
	}
	return out, nil
}

func (p *sfParser) parseBareItem() (sfItem, error) {
	c := p.peek()
	switch {
	case c == '-' || c >= '0' && c <= '9':
		return p.parseNumber()
	case c == '"':
		return p.parseString()
	case c == ':':
		return p.parseBytes()
	case c == '?':
		p.i++
		switch p.peek() {
		case '0', '1':
			b := p.peek() == '1'
			p.i++
			return sfItem{kind: '?', flag: b}, nil
		}
		return sfItem{}, p.fail("bad boolean")
	case c == '*' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return p.parseToken()
	}
	return sfItem{}, p.fail("bad item")
}

func (p *sfParser) parseNumber() (sfItem, error) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	if c := p.peek(); c < '0' || c > '9' {
		return sfItem{}, p.fail("bad number")
	}
	digits, dot := 0, -1
	for !p.eof() {
		c := p.s[p.i]
		if c >= '0' && c <= '9' {
			digits++
			p.i++
		} else if c == '.' && dot < 0 {
			dot = digits
			p.i++
		} else {
			break
		}
	}
	lit := p.s[start:p.i]
	if digits == 0 || (dot < 0 && digits > 15) || (dot >= 0 && (dot > 12 || digits-dot > 3 || digits == dot)) {
		return sfItem{}, p.fail("bad number")
	}
	if dot >= 0 {
		return sfItem{kind: 'd', str: lit}, nil
	}
	n, err := strconv.ParseInt(lit, 10, 64)
	if err != nil {
		return sfItem{}, p.fail("bad integer")
	}
	return sfItem{kind: 'i', num: n}, nil
}

func (p *sfParser) parseString() (sfItem, error) {
	p.i++ // "
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.eof() {
				return sfItem{}, p.fail("bad escape")
			}
			n := p.s[p.i]
			if n != '"' && n != '\\' {
				return sfItem{}, p.fail("bad escape")
			}
			b.WriteByte(n)
			p.i++
		case c == '"':
			return sfItem{kind: 's', str: b.String()}, nil
		case c < 0x20 || c > 0x7e:
			return sfItem{}, p.fail("bad string character")
		default:
			b.WriteByte(c)
		}
	}
	return sfItem{}, p.fail("unterminated string")
}

func (p *sfParser) parseToken() (sfItem, error) {
	start := p.i
	p.i++
	for !p.eof() {
		c := p.s[p.i]
		if isTChar(c) || c == ':' || c == '/' {
			p.i++
			continue
		}
		break
	}
	return sfItem{kind: 't', str: p.s[start:p.i]}, nil
}

func (p *sfParser) parseBytes() (sfItem, error) {
	p.i++ // :
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return sfItem{}, p.fail("unterminated byte sequence")
	}
	lit := p.s[p.i : p.i+end]
	p.i += end + 1
	b, err := base64.StdEncoding.DecodeString(lit)
	if err != nil {
		return sfItem{}, p.fail("bad base64")
	}
	return sfItem{kind: 'b', bytes: b}, nil
}

func isTChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// serializeString writes an sf-string. s must be printable ASCII.
func serializeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

func serializeItem(b *strings.Builder, it sfItem) {
	switch it.kind {
	case 's':
		serializeString(b, it.str)
	case 't', 'd':
		b.WriteString(it.str)
	case 'i':
		b.WriteString(strconv.FormatInt(it.num, 10))
	case 'b':
		b.WriteByte(':')
		b.WriteString(base64.StdEncoding.EncodeToString(it.bytes))
		b.WriteByte(':')
	case '?':
		if it.flag {
			b.WriteString("?1")
		} else {
			b.WriteString("?0")
		}
	}
}

func serializeParams(b *strings.Builder, params []sfParam) {
	for _, p := range params {
		b.WriteByte(';')
		b.WriteString(p.key)
		if p.val.kind == '?' && p.val.flag {
			continue
		}
		b.WriteByte('=')
		serializeItem(b, p.val)
	}
}

// serializeInnerList writes an inner list with its parameters.
func serializeInnerList(b *strings.Builder, list []sfListItem, params []sfParam) {
	b.WriteByte('(')
	for i, it := range list {
		if i > 0 {
			b.WriteByte(' ')
		}
		serializeItem(b, it.item)
		serializeParams(b, it.params)
	}
	b.WriteByte(')')
	serializeParams(b, params)
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
