# C types for the walk of protobuf bodies in receive.py, used only when Cython compiles it: the
# body is then read through a pointer to its bytes, and the positions, tags and lengths of the
# walk are machine integers compared with C constants. The .py stays the one implementation, and
# runs as it is from source, where `body` is the bytes object itself: `body[i]` is a byte either
# way, and `body[i:j]` new bytes. The pointer holds no reference: `_decode_protobuf` holds the body
# while the walk runs, and every read is checked against the end of its message, which lies
# within the body.

import cython

cdef Py_ssize_t _WIRE_VARINT, _WIRE_FIXED64, _WIRE_LENGTH_DELIMITED, _WIRE_START_GROUP, _WIRE_END_GROUP
cdef Py_ssize_t _WIRE_FIXED32, _MAX_DEPTH, _MAX_FIELD_NUMBER
cdef Py_ssize_t _DEPTH_RESOURCE_SPANS, _DEPTH_RESOURCE, _DEPTH_SCOPE_SPANS, _DEPTH_SPAN, _DEPTH_EVENT
cdef Py_ssize_t _REQUEST_RESOURCE_SPANS, _RESOURCE_SPANS_RESOURCE, _RESOURCE_SPANS_SCOPE_SPANS, _RESOURCE_ATTRIBUTES
cdef Py_ssize_t _SCOPE_SPANS_SPANS, _SPAN_TRACE_ID, _SPAN_SPAN_ID, _SPAN_PARENT_SPAN_ID, _SPAN_NAME
cdef Py_ssize_t _SPAN_START_TIME_UNIX_NANO, _SPAN_END_TIME_UNIX_NANO, _SPAN_ATTRIBUTES, _SPAN_EVENTS, _SPAN_STATUS
cdef Py_ssize_t _EVENT_TIME_UNIX_NANO, _EVENT_NAME, _EVENT_ATTRIBUTES
cdef Py_ssize_t _TAG_KEY, _TAG_VALUE, _MEMO_MAX_RAW_BYTES
cdef Py_ssize_t _TAG_STRING_VALUE, _TAG_BOOL_VALUE, _TAG_INT_VALUE, _TAG_DOUBLE_VALUE
cdef Py_ssize_t _STRING_VALUE_MAX_START, _DOUBLE_VALUE_BYTES, _SHORT_INT_VALUE_BYTES

@cython.locals(value=cython.ulonglong, byte=cython.ulonglong, shift=cython.int, start=Py_ssize_t)
cdef (unsigned long long, Py_ssize_t) _varint_at(const unsigned char* body, Py_ssize_t position, Py_ssize_t end)

@cython.locals(tag=cython.ulonglong, after=Py_ssize_t)
cdef (unsigned long long, Py_ssize_t) _tag_at(const unsigned char* body, Py_ssize_t position, Py_ssize_t end)

@cython.locals(length=cython.ulonglong, start=Py_ssize_t)
cdef (Py_ssize_t, Py_ssize_t) _value_end(const unsigned char* body, Py_ssize_t position, Py_ssize_t end)

@cython.locals(wire_type=Py_ssize_t, size=Py_ssize_t)
cdef Py_ssize_t _skip_field(const unsigned char* body, Py_ssize_t position, Py_ssize_t end, unsigned long long tag,
                            Py_ssize_t depth) except -1

@cython.locals(tag=cython.ulonglong)
cdef Py_ssize_t _skip_group(const unsigned char* body, Py_ssize_t position, Py_ssize_t end,
                            unsigned long long field_number, Py_ssize_t depth) except -1

@cython.locals(tag=cython.ulonglong, start=Py_ssize_t, fields=list)
cdef list _length_delimited_fields(const unsigned char* body, Py_ssize_t position, Py_ssize_t end, Py_ssize_t depth)

@cython.locals(value=cython.ulonglong, index=Py_ssize_t)
cdef unsigned long long _fixed64_at(const unsigned char* body, Py_ssize_t position) noexcept

cdef str _string_at(const unsigned char* body, Py_ssize_t start, Py_ssize_t end, str what)

@cython.locals(tag=cython.ulonglong, field_number=Py_ssize_t, wire_type=Py_ssize_t, start=Py_ssize_t,
               entries=list, time_unix_nano=cython.ulonglong)
cdef object _read_event(const unsigned char* body, Py_ssize_t position, Py_ssize_t end, object reader)

@cython.locals(tag=cython.ulonglong, field_number=Py_ssize_t, wire_type=Py_ssize_t, start=Py_ssize_t,
               entries=list, events=list, trace_id=bytes, span_id=bytes, parent_span_id=bytes, status=bytes,
               start_time_unix_nano=cython.ulonglong, end_time_unix_nano=cython.ulonglong)
cdef object _read_span(const unsigned char* body, Py_ssize_t position, Py_ssize_t end, object reader,
                       object resource_attributes)

@cython.locals(resource_entries=list, scopes=list, field_number=Py_ssize_t, start=Py_ssize_t, stop=Py_ssize_t,
               number=Py_ssize_t, entry_start=Py_ssize_t, entry_end=Py_ssize_t)
cdef _read_resource_spans(const unsigned char* body, Py_ssize_t position, Py_ssize_t end, object reader,
                          list records)

@cython.locals(tag=cython.ulonglong, start=Py_ssize_t)
cdef _read_scope_spans(const unsigned char* body, Py_ssize_t position, Py_ssize_t end, object reader,
                       object resource_attributes, list records)

@cython.locals(size=Py_ssize_t, key_end=Py_ssize_t)
cdef tuple _read_entry(object reader, bytes entry)

cdef tuple _skipped(object reader, bytes entry)

@cython.locals(seen_once=set)
cdef bint _seen_lately(object reader, bytes entry) except -1

cdef _remember(object reader, bytes entry, tuple known)

cdef bytes _bytes_between(const unsigned char* data, Py_ssize_t start, Py_ssize_t end)

@cython.locals(tag=Py_ssize_t, size=Py_ssize_t)
cdef object _scalar_any_value(bytes raw)
