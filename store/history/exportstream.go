package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"time"
)

// ExportTime is how an export states when it was made (Export.Exported).
func ExportTime(now time.Time) string { return now.UTC().Format(time.RFC3339) }

// ExportWriter writes an export one entry at a time, so that neither the entries nor the
// JSON are ever held whole. The bytes are those json.Encoder.Encode writes for the whole
// Export (with SetIndent("", indent) when indent is not ""), extra array fields after
// "entries" included: a struct embedding *Export, like the zip's history.json with its
// "media", streams the same way (Array, then Elem).
//
// Use: NewExportWriter, Entry for each entry in display order, optionally Array and Elem
// for further fields, then Close. The first error sticks: later calls return it.
type ExportWriter struct {
	w      *bufio.Writer
	indent string
	n      int // elements of the open array
	err    error
	buf    bytes.Buffer  // one element, indented
	enc    *json.Encoder // into buf: no allocation per element beyond encoding/json's own
	raw    []byte        // EntryJSON's input, for json.Indent
	elem   string        // what starts an element's line when indented
}

// NewExportWriter writes the export's head (format, v, room, exported) and opens its
// "entries" array. exported is Export.Exported (see ExportTime).
func NewExportWriter(w io.Writer, room ExportRoom, exported string, indent string) *ExportWriter {
	x := &ExportWriter{w: bufio.NewWriterSize(w, 32<<10), indent: indent}
	x.elem = "\n" + indent + indent
	x.enc = json.NewEncoder(&x.buf)
	// An element of a top-level array: its lines start two levels in (the first line is
	// never prefixed, as with json.Indent).
	x.enc.SetIndent(indent+indent, indent)
	if indent == "" {
		x.enc.SetIndent("", "")
	}
	x.write("{")
	x.field("format", ExportFormat, true)
	x.field("v", ExportVersion, false)
	x.field("room", room, false)
	x.field("exported", exported, false)
	x.key("entries", false)
	x.write("[")
	return x
}

// Entry appends e to the entries (or to the array Array opened last).
func (x *ExportWriter) Entry(e Entry) error { return x.Elem(e) }

// EntryJSON appends an entry given as its compact JSON, as json.Marshal writes it (a
// store's stored value): it is written as it is, or indented, never decoded.
func (x *ExportWriter) EntryJSON(js string) error {
	if x.err != nil {
		return x.err
	}
	if x.n > 0 {
		x.write(",")
	}
	x.n++
	if x.indent == "" {
		x.write(js)
		return x.err
	}
	x.write(x.elem)
	x.raw = append(x.raw[:0], js...)
	x.writeIndented(x.raw, x.indent+x.indent)
	return x.err
}

// Elem appends v, marshalled as encoding/json does, to the open array.
func (x *ExportWriter) Elem(v any) error {
	if x.err != nil {
		return x.err
	}
	x.buf.Reset()
	if err := x.enc.Encode(v); err != nil {
		x.err = err
		return err
	}
	b := bytes.TrimSuffix(x.buf.Bytes(), []byte("\n"))
	if x.n > 0 {
		x.write(",")
	}
	x.n++
	if x.indent != "" {
		x.write(x.elem)
	}
	x.writeBytes(b)
	return x.err
}

// Array closes the open array and opens another field, name, as an array.
func (x *ExportWriter) Array(name string) error {
	x.closeArray()
	x.key(name, false)
	x.write("[")
	x.n = 0
	return x.err
}

// Close closes the open array and the object, ends the line as json.Encoder does, and
// flushes. It does not close the underlying writer.
func (x *ExportWriter) Close() error {
	if x.err != nil {
		return x.err
	}
	x.closeArray()
	if x.indent != "" {
		x.write("\n")
	}
	x.write("}\n")
	if x.err == nil {
		x.err = x.w.Flush()
	}
	if x.err == nil {
		x.err = errClosed // a later call must not write after the end
		return nil
	}
	return x.err
}

var errClosed = errors.New("history: export writer closed")

func (x *ExportWriter) closeArray() {
	if x.n > 0 && x.indent != "" {
		x.write("\n" + x.indent)
	}
	x.write("]")
}

// key writes a field's name (and the comma before it unless first).
func (x *ExportWriter) key(name string, first bool) {
	if !first {
		x.write(",")
	}
	k, _ := json.Marshal(name)
	if x.indent == "" {
		x.writeBytes(k)
		x.write(":")
		return
	}
	x.write("\n" + x.indent)
	x.writeBytes(k)
	x.write(": ")
}

func (x *ExportWriter) field(name string, v any, first bool) {
	x.key(name, first)
	if x.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		x.err = err
		return
	}
	if x.indent == "" {
		x.writeBytes(b)
		return
	}
	x.writeIndented(b, x.indent)
}

// writeIndented writes compact JSON b indented as at a depth whose lines start with prefix.
func (x *ExportWriter) writeIndented(b []byte, prefix string) {
	x.buf.Reset()
	if err := json.Indent(&x.buf, b, prefix, x.indent); err != nil {
		x.err = err
		return
	}
	x.writeBytes(x.buf.Bytes())
}

func (x *ExportWriter) write(s string) {
	if x.err == nil {
		_, x.err = x.w.WriteString(s)
	}
}

func (x *ExportWriter) writeBytes(b []byte) {
	if x.err == nil {
		_, x.err = x.w.Write(b)
	}
}
