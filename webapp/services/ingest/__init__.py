"""F1 bulk-message and F2 do-not-contact files: validated, normalised and loaded, streamed.

Where things are: `files` (what both share: the file name, encoding, lines, fields, FileRejected),
`bulk` (F1: `preview_bulk`, `load_bulk`), `do_not_contact` (F2: `load_dnc`).

F1 lines are `campaign;destination;message;priority;` (the trailing ";" is
optional); "campaign" is the name of an existing dialer. Columns after the
priority are template variables: the 1st fills `{1}` in the message, the 2nd
`{2}`, and so on. F2 lines are `phone;campaign;`.

Rules (each refusal is a FileRejected naming the line, and the field when there is one):
- file name: letters, digits, "_", "." and "-" only, ends in ".csv", at most 64 characters;
- encoding: UTF-8 (a BOM is fine); a file that is not valid UTF-8 is read as cp1252 (Excel's
  "CSV" on Windows), or latin-1 when even cp1252 cannot decode it. The summary says which;
- no empty line anywhere (the newline that ends the last line is fine); spaces at the end of a
  line are ignored;
- none of ' " @ ` < > \\ nor a control character (tab included) in any field;
- at least four columns (F1) / two (F2);
- the dialer exists (F2: a dialer, else an inbound campaign of that name); with `only_dialer_id`
  (an upload from one dialer's dashboard) every line must be for that dialer;
- priority: a whole number from 0 to 9999; message: not empty, at most 1,600 characters
  (`providers.gsm.MAX_MESSAGE_LENGTH`) once the variables are filled in, and every `{n}` it uses
  has its column.

Line numbers fused into the first field (the manual's `1campsms;…`, `123578408;marcadortest;`):
the field is taken as it is when it is valid (it names a dialer; F2: it is a valid number); only
otherwise, when it begins with the line's own number and what follows is valid, is that number
dropped. So a dialer named "2go" works as "2go" on any line, and as "12go" on line 1.

Destinations are normalised to E.164 (`phones.to_e164`, region DEFAULT_REGION). A number that is
not valid still loads, in state INVALID ("Otros" on the dashboard), kept as written; one on the
do-not-contact list loads as BLOCKED when its dialer has DNCR on (the engine checks again before
sending); the rest as TO PROCESS. The preview names the first `bulk.INVALID_LISTED` invalid lines (line
number and the destination as written) and counts the rest.

All or nothing: `load_bulk` and `load_dnc` run in one database transaction on `db.session`. Rows
go in by chunks of CHUNK (executemany on the session's Core connection) while the file streams past (never the whole file
in memory); any refusal or error rolls the whole transaction back, chunks already inserted
included, and a success commits. Call them with no other pending work in the session.
"""
