#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/.

    python3 tests/fuzz/make_corpus.py

Seeds come from the data captured for the unit tests (tests/unit/data: SDP
from Chromium with JsSIP and SIP.js, their INVITEs and a JsSIP REGISTER, SDP
after Asterisk and FreeSWITCH), the example configuration, and messages and
packets written here after what JsSIP, SIP.js, Asterisk and Chromium send.
Seeds are named seed-*; inputs that once crashed a target are added beside
them as crash-* (by hand, from run.sh's artifacts), and inputs that show an
issue still open as found-*; neither is rewritten here.
The input formats are those of the targets (see the comment at the top of
each fuzz_<target>.c); parts are separated by one 0xff byte.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, 'tests', 'unit', 'data')
SEP = b'\xff'


def data(*path):
    with open(os.path.join(DATA, *path), 'rb') as f:
        return f.read()


def crlf(text):
    """Text with CRLF line ends, as SIP and SDP go on the wire."""
    if isinstance(text, str):
        text = text.encode()
    return text.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')


def write(target, name, content):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'seed-' + name), 'wb') as f:
        f.write(content)


def clean(target):
    d = os.path.join(HERE, 'corpus', target)
    if os.path.isdir(d):
        for n in os.listdir(d):
            if n.startswith('seed-'):
                os.remove(os.path.join(d, n))


# ---------------------------------------------------------------------------
# SIP over WebSocket (fuzz_ws_router): JsSIP 3.13 and SIP.js 0.21 style

def sip(start, headers, body=b''):
    """A SIP message: start line, headers (list of str), body (bytes)."""
    if isinstance(body, str):
        body = body.encode()
    h = [start] + headers + ['Content-Length: %d' % len(body)]
    return crlf('\n'.join(h) + '\n\n') + body


JSSIP_VIA = 'Via: SIP/2.0/WSS 5ql8ha0ae2vd.invalid;branch=z9hG4bK%s'
SIPJS_VIA = 'Via: SIP/2.0/WSS e7dme0p8f4cg.invalid;branch=z9hG4bK%s'
JSSIP_UA = 'User-Agent: JsSIP 3.13.8'
SIPJS_UA = 'User-Agent: SIP.js/0.21.2'
JSSIP_CONTACT = 'Contact: <sip:i7ip2q7b@5ql8ha0ae2vd.invalid;transport=ws>'
ALLOW = 'Allow: INVITE,ACK,CANCEL,BYE,UPDATE,MESSAGE,OPTIONS,REFER,INFO,NOTIFY'


def jssip_register(cseq=1, expires=600, auth=None, contact=None):
    hs = [JSSIP_VIA % ('22071%02d' % cseq), 'Max-Forwards: 69', 'To: <sip:alice@localhost>',
          'From: <sip:alice@localhost>;tag=tv1bf3k9hi', 'Call-ID: 6d0i7rk6qdf1ikhkp2to0f',
          'CSeq: %d REGISTER' % cseq]
    if auth:
        hs.append(auth)
    hs += [contact or ('Contact: <sip:i7ip2q7b@5ql8ha0ae2vd.invalid;transport=ws>;+sip.ice;reg-id=1;'
                       '+sip.instance="<urn:uuid:0b5e2a4b-5a06-4bd6-9a5a-b1b3c4b6f1a3>";expires=%d' % expires),
           'Expires: %d' % expires, ALLOW, 'Supported: path,gruu,outbound', JSSIP_UA]
    return sip('REGISTER sip:localhost SIP/2.0', hs)


def sipjs_register():
    return sip('REGISTER sip:example.com SIP/2.0', [
        SIPJS_VIA % '4917283', 'To: <sip:bob@example.com>', 'From: <sip:bob@example.com>;tag=h2k4c9l1sd',
        'CSeq: 1 REGISTER', 'Call-ID: 7snxkq3b9m1dfn6lq0a2', 'Max-Forwards: 70',
        'Contact: <sip:ut4sfv2d@e7dme0p8f4cg.invalid;transport=ws>;expires=600', 'Expires: 600',
        ALLOW, 'Supported: outbound, path, gruu', SIPJS_UA])


def browser_request(method, uri, cseq, branch, extra=(), body=b'', to_tag=None, call_id='aj62v9u2lrl0tb3f99se',
                    from_tag='cvttm9env7', to='sip:bob@localhost'):
    hs = [JSSIP_VIA % branch, 'Max-Forwards: 69',
          'To: <%s>%s' % (to, (';tag=' + to_tag) if to_tag else ''),
          'From: "Alice" <sip:alice@localhost>;tag=%s' % from_tag, 'Call-ID: ' + call_id,
          'CSeq: %d %s' % (cseq, method)] + list(extra)
    return sip('%s %s SIP/2.0' % (method, uri), hs + [JSSIP_UA], body)


def invite(uri, sdp, to='sip:bob@localhost', extra=()):
    return browser_request('INVITE', uri, 8336, '2066988', [
        'Contact: <sip:g7g5rbkb@5ql8ha0ae2vd.invalid;transport=ws;ob>', 'Content-Type: application/sdp',
        'Session-Expires: 90', ALLOW, 'Supported: timer,ice,replaces,outbound'] + list(extra), sdp, to=to)


def in_dialog(method, cseq, branch, extra=(), body=b'', to='sip:bob@localhost', uri='sip:bob@localhost'):
    """A request in the dialog rtcsipd answered: its To tag from @@T."""
    return browser_request(method, uri, cseq, branch, extra, body, to_tag='@@T', to=to)


def pbx(text):
    return b'\x01' + crlf(text)


def pbx_response(status, headers=(), body=b''):
    """A response from the PBX to its last request (the harness puts in Via,
    Call-ID, CSeq, From)."""
    if isinstance(body, str):
        body = body.encode()
    hs = ['SIP/2.0 ' + status] + list(headers) + ['Content-Length: %d' % len(body)]
    return b'\x01' + crlf('\n'.join(hs) + '\n\n') + body


def pbx_request(start, headers, body=b''):
    if isinstance(body, str):
        body = body.encode()
    hs = [start, 'Via: SIP/2.0/UDP 127.0.0.1;rport;branch=z9hG4bK-pbx-1', 'Max-Forwards: 70'] + list(headers)
    hs.append('Content-Length: %d' % len(body))
    return b'\x01' + crlf('\n'.join(hs) + '\n\n') + body


def browser_response(status, cseq_method, extra=(), body=b''):
    """The browser's answer to what rtcsipd last sent it (@@B, @@C, @@F, @@N)."""
    hs = ['SIP/2.0 ' + status, 'Via: SIP/2.0/WS 127.0.0.1;branch=@@B',
          'To: <sip:alice@localhost>;tag=8f2kq1x9r4', 'From: <sip:1000@localhost>;tag=@@F',
          'Call-ID: @@C', 'CSeq: @@N ' + cseq_method] + list(extra)
    return sip(hs[0], hs[1:] + [JSSIP_UA], body)


def ws_router():
    t = 'ws_router'
    clean(t)
    jssip_audio = crlf(data('sdp', 'chromium-jssip-audio.sdp'))
    sipjs_audio = crlf(data('sdp', 'chromium-sipjs-audio.sdp'))
    jssip_answer = crlf(data('sdp', 'chromium-jssip-answer-audio.sdp'))
    ast_answer = crlf(data('sdp', 'asterisk-answer-pcmu.sdp'))
    ast_offer = crlf(data('sdp', 'asterisk-offer-pcmu-pcma-te.sdp'))
    fs_answer = crlf(data('sdp', 'freeswitch-answer-opus.sdp'))
    hold_offer = crlf(data('sdp', 'asterisk-offer-hold-sendonly.sdp'))
    reg_200 = pbx_response('200 OK', ['To: <sip:alice@localhost>;tag=as5f2e1c09',
                                      'Contact: <sip:@@K@127.0.0.1;transport=udp>;expires=600',
                                      'Contact: <sip:othertoken@127.0.0.1;transport=udp>;expires=300'])

    # captured as they are, LF line ends and all
    write(t, 'jssip-register-captured', data('sip', 'jssip-register.txt'))
    write(t, 'jssip-invite-audio-video-captured', data('sdp', 'chromium-jssip-audio-video-invite.txt'))
    write(t, 'sipjs-200-captured-unsolicited', data('sdp', 'chromium-sipjs-answer-audio-200.txt'))
    write(t, 'kamailio-200-from-browser', data('sip', 'kamailio-register-200.txt'))

    # REGISTER: challenged, then with credentials, 200 with the binding, refresh, unregister
    auth = ('Authorization: Digest algorithm=MD5, username="alice", realm="localhost", '
            'nonce="ZV3xVWVd8ClkM7b1", uri="sip:localhost", response="5a6fbd3c8c07b8a1c2f1c6a1a2c3b4d5", '
            'qop=auth, cnonce="k2j3h4g5f6", nc=00000001')
    write(t, 'register-401-auth-200-unregister', SEP.join([
        jssip_register(1),
        pbx_response('401 Unauthorized', ['To: <sip:alice@localhost>;tag=as1b2c3d4',
                                          'WWW-Authenticate: Digest realm="localhost", nonce="ZV3xVWVd8ClkM7b1", '
                                          'qop="auth", algorithm=MD5']),
        jssip_register(2, auth=auth), reg_200,
        jssip_register(3), reg_200,
        jssip_register(4, expires=0),
        pbx_response('200 OK', ['To: <sip:alice@localhost>;tag=as5f2e1c09'])]))
    write(t, 'sipjs-register-403', SEP.join([sipjs_register(), pbx_response('403 Forbidden')]))
    write(t, 'register-star', jssip_register(1, expires=0, contact='Contact: *'))
    write(t, 'register-two-contacts', jssip_register(
        1, contact='Contact: <sip:a@x.invalid;transport=ws>, <sip:b@x.invalid;transport=ws>'))
    write(t, 'register-no-answer-then-close', SEP.join([jssip_register(1), b'\x04', b'\x03']))
    write(t, 'register-other-domain', crlf(data('sip', 'jssip-register.txt')).replace(b'example.com', b'evil.test'))

    # keepalives, OPTIONS to rtcsipd and to a user, MESSAGE
    write(t, 'crlf-keepalive', b'\r\n\r\n')
    write(t, 'options-to-rtcsipd', browser_request('OPTIONS', 'sip:localhost', 1, '123456',
                                                   ['Accept: application/sdp'], to='sip:localhost'))
    write(t, 'options-to-user-pbx-200', SEP.join([
        browser_request('OPTIONS', 'sip:bob@localhost', 2, '123457'),
        pbx_response('200 OK', ['To: <sip:bob@localhost>;tag=xyz', 'Allow: INVITE, ACK, BYE'])]))
    write(t, 'message-pbx-202', SEP.join([
        browser_request('MESSAGE', 'sip:bob@localhost', 3, '123458', ['Content-Type: text/plain'], 'Hello Bob!'),
        pbx_response('202 Accepted', ['To: <sip:bob@localhost>;tag=m1'])]))
    write(t, 'message-pbx-silent', browser_request('MESSAGE', 'sip:bob@localhost', 4, '123459',
                                                   ['Content-Type: text/plain'], 'anyone?'))

    # the echo target: JsSIP and SIP.js, answered, ACK, INFO DTMF, re-INVITE, BYE; CANCEL
    write(t, 'echo-jssip-ack-info-bye', SEP.join([
        invite('sip:echo@localhost', jssip_audio, to='sip:echo@localhost'), b'\x04',
        in_dialog('ACK', 8336, '2066989', to='sip:echo@localhost', uri='sip:echo@localhost'),
        in_dialog('INFO', 8337, '2066990', ['Content-Type: application/dtmf-relay'], 'Signal=5\r\nDuration=160\r\n',
                  to='sip:echo@localhost', uri='sip:echo@localhost'),
        in_dialog('BYE', 8338, '2066991', to='sip:echo@localhost', uri='sip:echo@localhost')]))
    write(t, 'echo-sipjs-cancel', SEP.join([
        invite('sip:echo@localhost', sipjs_audio, to='sip:echo@localhost'),
        browser_request('CANCEL', 'sip:echo@localhost', 8336, '2066988', to='sip:echo@localhost')]))
    write(t, 'echo-reinvite-hold', SEP.join([
        invite('sip:echo@localhost', jssip_audio, to='sip:echo@localhost'), b'\x04',
        in_dialog('ACK', 8336, '2066989', to='sip:echo@localhost', uri='sip:echo@localhost'),
        in_dialog('INVITE', 8337, '2066992', ['Contact: <sip:g7g5rbkb@5ql8ha0ae2vd.invalid;transport=ws;ob>',
                                              'Content-Type: application/sdp'],
                  jssip_audio.replace(b'a=sendrecv', b'a=sendonly'), to='sip:echo@localhost',
                  uri='sip:echo@localhost')]))
    write(t, 'echo-no-sdp', invite('sip:echo@localhost', b'', to='sip:echo@localhost'))

    # calls through the PBX: answered (Asterisk PCMU, FreeSWITCH opus), refused, challenged, CANCEL, BYE both ways
    write(t, 'call-pbx-180-200-ack-bye', SEP.join([
        invite('sip:1000@localhost', jssip_audio, to='sip:1000@localhost'),
        pbx_response('100 Trying'),
        pbx_response('180 Ringing', ['To: <sip:1000@localhost>;tag=pbx1', 'Contact: <sip:1000@127.0.0.1:5060>']),
        pbx_response('200 OK', ['To: <sip:1000@localhost>;tag=pbx1', 'Contact: <sip:1000@127.0.0.1:5060>',
                                'Content-Type: application/sdp', 'Session-Expires: 1800;refresher=uac',
                                'Require: timer'], ast_answer), b'\x04',
        in_dialog('ACK', 8336, '2066989', to='sip:1000@localhost', uri='sip:1000@localhost'),
        in_dialog('BYE', 8337, '2066990', to='sip:1000@localhost', uri='sip:1000@localhost'),
        pbx_response('200 OK', ['To: <sip:1000@localhost>;tag=pbx1'])]))
    write(t, 'call-pbx-183-early-200-opus', SEP.join([
        invite('sip:1000@localhost', sipjs_audio, to='sip:1000@localhost'),
        pbx_response('183 Session Progress', ['To: <sip:1000@localhost>;tag=fs9', 'Contact: <sip:1000@127.0.0.1>',
                                              'Content-Type: application/sdp'], fs_answer),
        pbx_response('200 OK', ['To: <sip:1000@localhost>;tag=fs9', 'Contact: <sip:1000@127.0.0.1>',
                                'Content-Type: application/sdp'], fs_answer)]))
    write(t, 'call-pbx-486', SEP.join([invite('sip:1000@localhost', jssip_audio, to='sip:1000@localhost'),
                                       pbx_response('486 Busy Here', ['To: <sip:1000@localhost>;tag=b1'])]))
    write(t, 'call-pbx-407', SEP.join([
        invite('sip:1000@localhost', jssip_audio, to='sip:1000@localhost'),
        pbx_response('407 Proxy Authentication Required',
                     ['To: <sip:1000@localhost>;tag=c1',
                      'Proxy-Authenticate: Digest realm="localhost", nonce="abc123", algorithm=MD5'])]))
    write(t, 'call-pbx-422', SEP.join([
        invite('sip:1000@localhost', jssip_audio, to='sip:1000@localhost'),
        pbx_response('422 Session Interval Too Small', ['To: <sip:1000@localhost>;tag=t1', 'Min-SE: 1800'])]))
    write(t, 'call-pbx-cancel', SEP.join([
        invite('sip:1000@localhost', jssip_audio, to='sip:1000@localhost'),
        pbx_response('180 Ringing', ['To: <sip:1000@localhost>;tag=r1']),
        browser_request('CANCEL', 'sip:1000@localhost', 8336, '2066988', to='sip:1000@localhost'),
        pbx_response('200 OK', ['To: <sip:1000@localhost>;tag=r1'])]))
    write(t, 'call-pbx-bye-from-pbx', SEP.join([
        invite('sip:1000@localhost', jssip_audio, to='sip:1000@localhost'),
        pbx_response('200 OK', ['To: <sip:1000@localhost>;tag=pbx2', 'Contact: <sip:1000@127.0.0.1:5060>',
                                'Content-Type: application/sdp'], ast_answer), b'\x04',
        in_dialog('ACK', 8336, '2066989', to='sip:1000@localhost', uri='sip:1000@localhost'),
        pbx_request('BYE sip:127.0.0.1 SIP/2.0', ['From: <sip:1000@localhost>;tag=pbx2',
                                                  'To: "Alice" <sip:alice@localhost>;tag=@@F',
                                                  'Call-ID: @@C', 'CSeq: 102 BYE'])]))
    write(t, 'call-jssip-audio-video', SEP.join([data('sdp', 'chromium-jssip-audio-video-invite.txt'),
                                                 pbx_response('100 Trying')]))

    # the PBX calls a registered browser, which rings and answers; a MESSAGE for it
    pbx_invite = pbx_request('INVITE sip:@@K@127.0.0.1 SIP/2.0', [
        'From: <sip:1000@localhost>;tag=as4a1', 'To: <sip:alice@localhost>', 'Call-ID: pbxcall-1@127.0.0.1',
        'CSeq: 102 INVITE', 'Contact: <sip:1000@127.0.0.1:5060>', 'Content-Type: application/sdp',
        'Allow: INVITE, ACK, CANCEL, BYE, UPDATE, INFO', 'Supported: timer, replaces'], ast_offer)
    write(t, 'pbx-invites-browser-answers', SEP.join([
        jssip_register(1), reg_200, pbx_invite, b'\x04',
        browser_response('180 Ringing', 'INVITE', ['Contact: <sip:i7ip2q7b@5ql8ha0ae2vd.invalid;transport=ws>']),
        browser_response('200 OK', 'INVITE', ['Contact: <sip:i7ip2q7b@5ql8ha0ae2vd.invalid;transport=ws>',
                                              'Content-Type: application/sdp'], jssip_answer)]))
    write(t, 'pbx-invites-browser-486', SEP.join([
        jssip_register(1), reg_200, pbx_invite, b'\x04', browser_response('486 Busy Here', 'INVITE')]))
    write(t, 'pbx-invites-nobody', pbx_invite)
    write(t, 'pbx-message-to-browser', SEP.join([
        jssip_register(1), reg_200,
        pbx_request('MESSAGE sip:@@K@127.0.0.1 SIP/2.0', [
            'From: <sip:1000@localhost>;tag=m9', 'To: <sip:alice@localhost>', 'Call-ID: pbxmsg-1',
            'CSeq: 1 MESSAGE', 'Content-Type: text/plain'], 'hi alice'),
        browser_response('200 OK', 'MESSAGE')]))
    write(t, 'pbx-options-to-rtcsipd', pbx_request('OPTIONS sip:127.0.0.1 SIP/2.0', [
        'From: <sip:pbx@127.0.0.1>;tag=o1', 'To: <sip:127.0.0.1>', 'Call-ID: ping-1', 'CSeq: 1 OPTIONS']))
    write(t, 'pbx-reinvite-hold', SEP.join([
        invite('sip:1000@localhost', jssip_audio, to='sip:1000@localhost'),
        pbx_response('200 OK', ['To: <sip:1000@localhost>;tag=pbx3', 'Contact: <sip:1000@127.0.0.1:5060>',
                                'Content-Type: application/sdp'], ast_answer), b'\x04',
        in_dialog('ACK', 8336, '2066989', to='sip:1000@localhost', uri='sip:1000@localhost'),
        pbx_request('INVITE sip:127.0.0.1 SIP/2.0', [
            'From: <sip:1000@localhost>;tag=pbx3', 'To: "Alice" <sip:alice@localhost>;tag=@@F', 'Call-ID: @@C',
            'CSeq: 103 INVITE', 'Contact: <sip:1000@127.0.0.1:5060>', 'Content-Type: application/sdp'],
            hold_offer)]))

    # refusals and broken input
    write(t, 'invite-to-tag-481', browser_request('INVITE', 'sip:1000@localhost', 1, '99', to_tag='x',
                                                  to='sip:1000@localhost'))
    write(t, 'invite-other-domain-403', invite('sip:1000@evil.test', jssip_audio, to='sip:1000@evil.test'))
    write(t, 'max-forwards-0-483', browser_request('MESSAGE', 'sip:bob@localhost', 5, '98').replace(
        b'Max-Forwards: 69', b'Max-Forwards: 0'))
    write(t, 'no-call-id-400', browser_request('OPTIONS', 'sip:bob@localhost', 6, '97').replace(
        b'Call-ID: aj62v9u2lrl0tb3f99se\r\n', b''))
    write(t, 'cseq-mismatch-400', browser_request('MESSAGE', 'sip:bob@localhost', 7, '96').replace(
        b'CSeq: 7 MESSAGE', b'CSeq: 7 INVITE'))
    write(t, 'no-via-close', crlf('OPTIONS sip:localhost SIP/2.0\nCall-ID: x\nCSeq: 1 OPTIONS\n\n'))
    write(t, 'garbage', b'hello, is this SIP?')
    write(t, 'response-nobody-asked', crlf('SIP/2.0 200 OK\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKnope\n'
                                           'From: <sip:a@localhost>;tag=1\nTo: <sip:b@localhost>;tag=2\n'
                                           'Call-ID: nope\nCSeq: 1 MESSAGE\nContent-Length: 0\n\n'))
    write(t, 'ack-no-dialog', browser_request('ACK', 'sip:bob@localhost', 1, '95', to_tag='q'))
    write(t, 'two-connections', SEP.join([jssip_register(1), b'\x02', sipjs_register(), b'\x03',
                                          browser_request('OPTIONS', 'sip:localhost', 1, '94', to='sip:localhost')]))


# ---------------------------------------------------------------------------
# SDP (fuzz_sdp): A 0xff B; browser calls (WebRTC offer, plain answer) and the PBX calls (plain offer, WebRTC answer)

def sdp():
    t = 'sdp'
    clean(t)
    s = lambda n: data('sdp', n)
    pairs = [
        ('jssip-offer-asterisk-answer', 'chromium-jssip-audio.sdp', 'asterisk-answer-pcmu.sdp'),
        ('sipjs-offer-freeswitch-answer', 'chromium-sipjs-audio.sdp', 'freeswitch-answer-opus.sdp'),
        ('jssip-av-offer-rejected-answer', 'chromium-jssip-audio-video.sdp', 'plain-answer-audio-rejected.sdp'),
        ('sipjs-av-offer-inactive', 'chromium-sipjs-audio-video.sdp', 'rfc3264-answer-inactive.sdp'),
        ('jssip-offer-recvonly', 'chromium-jssip-audio.sdp', 'rfc3264-answer-recvonly.sdp'),
        ('asterisk-offer-jssip-answer', 'asterisk-offer-pcmu-pcma-te.sdp', 'chromium-jssip-answer-audio.sdp'),
        ('freeswitch-av-offer-sipjs-answer', 'freeswitch-offer-audio-video.sdp', 'chromium-sipjs-answer-audio.sdp'),
        ('hold-sendonly-jssip-answer', 'asterisk-offer-hold-sendonly.sdp', 'chromium-jssip-answer-audio.sdp'),
        ('hold-c0-sipjs-answer', 'freeswitch-offer-hold-c0.sdp', 'chromium-sipjs-answer-audio.sdp'),
        ('g729-only', 'asterisk-offer-g729-only.sdp', 'chromium-jssip-answer-audio.sdp'),
        ('rtcsipd-offer-answer', 'rtcsipd-webrtc-offer-pcmu-pcma-g722.sdp', 'chromium-sipjs-answer-audio.sdp'),
    ]
    for name, a, b in pairs:
        write(t, name, crlf(s(a)) + SEP + crlf(s(b)))
    for n in sorted(os.listdir(os.path.join(DATA, 'sdp'))):
        if n.endswith('.sdp'):
            write(t, 'single-' + n[:-4], crlf(s(n)))
    write(t, 'lf-only', s('chromium-jssip-audio.sdp').replace(b'\r\n', b'\n'))
    ipv6 = crlf('v=0\no=- 1 1 IN IP6 2001:db8::1\ns=-\nc=IN IP6 2001:db8::1\nt=0 0\n'
                'm=audio 4000 RTP/AVP 0 8 101\na=rtpmap:0 PCMU/8000\na=rtpmap:8 PCMA/8000\n'
                'a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\na=rtcp:4001 IN IP6 2001:db8::1\na=ptime:20\n')
    write(t, 'ipv6-plain', ipv6 + SEP + crlf(s('chromium-jssip-answer-audio.sdp')))


# ---------------------------------------------------------------------------
# media (fuzz_media): mode byte, then [op][len16][bytes] records

OP_PBX_UDP_RTP, OP_PBX_UDP_RTCP, OP_BROWSER_DATAGRAM, OP_BROWSER_PLAIN, OP_PBX_PLAIN_RTP, OP_PBX_PLAIN_RTCP, \
    OP_CONTROL, OP_SRTP_ROUND_TRIP, OP_SRTP_UNPROTECT = range(9)
MODE_ECHO, MODE_GCM, MODE_DTMF, MODE_PT_MAP = 1, 2, 4, 8


def rec(op, payload):
    return struct.pack('>BH', op, len(payload)) + payload


def rtp(pt, seq, ts, ssrc, payload=b'\xd5' * 160, marker=False, csrcs=(), ext=None, padding=0):
    b0 = 0x80 | (0x20 if padding else 0) | (0x10 if ext is not None else 0) | len(csrcs)
    h = struct.pack('>BBHII', b0, (0x80 if marker else 0) | pt, seq, ts, ssrc)
    for c in csrcs:
        h += struct.pack('>I', c)
    if ext is not None:
        h += struct.pack('>HH', 0xbede, len(ext) // 4) + ext
    pad = (b'\x00' * (padding - 1) + bytes([padding])) if padding else b''
    return h + payload + pad


def te(event, end, volume, duration):
    return struct.pack('>BBH', event, (0x80 if end else 0) | volume, duration)


def rtcp_sr(ssrc):
    return struct.pack('>BBHIIIIII', 0x80, 200, 6, ssrc, 0xe5f7a1b2, 0x12345678, 160000, 50, 8000)


def rtcp_rr(ssrc, report_ssrc):
    return struct.pack('>BBHI', 0x81, 201, 7, ssrc) + struct.pack('>IIIIII', report_ssrc, 0x00000010, 1000, 20,
                                                                  0xe5f7a1b2, 100)


def rtcp_compound(ssrc):
    sdes = struct.pack('>BBHIBB', 0x81, 202, 3, ssrc, 1, 6) + b'abcdef' + b'\x00\x00'
    return rtcp_rr(ssrc, 0x11111111) + sdes


def rtcp_pli(ssrc, media):
    return struct.pack('>BBHII', 0x81, 206, 2, ssrc, media)


def stun_binding_request():
    attrs = struct.pack('>HH', 0x0006, 9) + b'rtcS:O+ii\x00\x00\x00'         # USERNAME
    attrs += struct.pack('>HHI', 0x0024, 4, 1853824767)                      # PRIORITY
    attrs += struct.pack('>HHQ', 0x802a, 8, 0x1122334455667788)             # ICE-CONTROLLING
    attrs += struct.pack('>HH', 0x0008, 20) + b'\x5a' * 20                   # MESSAGE-INTEGRITY
    attrs += struct.pack('>HHI', 0x8028, 4, 0xdeadbeef)                      # FINGERPRINT
    return struct.pack('>HHI', 0x0001, len(attrs), 0x2112a442) + b'\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c' \
        + attrs


def dtls_client_hello():
    # an OpenSSL 3.0 DTLS 1.2 ClientHello offering SRTP_AES128_CM_SHA1_80 and
    # SRTP_AEAD_AES_128_GCM (captured from openssl s_client -dtls1_2 -use_srtp)
    path = os.path.join(HERE, 'dtls-client-hello.bin')
    with open(path, 'rb') as f:
        return f.read()


def media():
    t = 'media'
    clean(t)
    opus = lambda seq, **kw: rtp(111, seq, seq * 960, 0x1111, b'\x78' * 60, **kw)
    pcmu = lambda seq, **kw: rtp(0, seq, seq * 160, 0x2222, **kw)
    dtmf_b = lambda seq, ev, end, dur: rtp(126, seq, 9600, 0x1111, te(ev, end, 10, dur), marker=(dur == 960))
    dtmf_p = lambda seq, ev, end, dur: rtp(101, seq, 1600, 0x2222, te(ev, end, 10, dur), marker=(dur == 160))

    write(t, 'browser-rtp-both-ways', bytes([MODE_PT_MAP]) + b''.join(
        [rec(OP_BROWSER_PLAIN, opus(i)) for i in range(3)] + [rec(OP_PBX_UDP_RTP, pcmu(i)) for i in range(3)] +
        [rec(OP_PBX_PLAIN_RTP, pcmu(3))]))
    write(t, 'rtcp-both-ways', bytes([0]) + rec(OP_BROWSER_PLAIN, rtcp_sr(0x1111)) +
          rec(OP_BROWSER_PLAIN, rtcp_compound(0x1111)) + rec(OP_PBX_UDP_RTCP, rtcp_rr(0x2222, 0x1111)) +
          rec(OP_PBX_PLAIN_RTCP, rtcp_sr(0x2222)) + rec(OP_BROWSER_PLAIN, rtcp_pli(0x1111, 0x2222)))
    write(t, 'dtmf-from-browser', bytes([MODE_PT_MAP | MODE_DTMF]) + b''.join(
        [rec(OP_BROWSER_PLAIN, opus(1)), rec(OP_BROWSER_PLAIN, dtmf_b(2, 5, False, 960)),
         rec(OP_BROWSER_PLAIN, dtmf_b(3, 5, False, 1920)), rec(OP_BROWSER_PLAIN, dtmf_b(4, 5, True, 2880)),
         rec(OP_BROWSER_PLAIN, dtmf_b(5, 5, True, 2880)), rec(OP_BROWSER_PLAIN, dtmf_b(6, 5, True, 2880)),
         rec(OP_BROWSER_PLAIN, opus(7))]))
    write(t, 'dtmf-from-pbx-dropped', bytes([MODE_PT_MAP | MODE_DTMF]) + b''.join(
        [rec(OP_CONTROL, bytes([1, 0])),  # forward_dtmf(from PBX, false)
         rec(OP_PBX_UDP_RTP, pcmu(1)), rec(OP_PBX_UDP_RTP, dtmf_p(2, 11, False, 160)),
         rec(OP_PBX_UDP_RTP, dtmf_p(3, 11, True, 800)), rec(OP_PBX_UDP_RTP, dtmf_p(4, 11, True, 800)),
         rec(OP_PBX_UDP_RTP, pcmu(5))]))
    write(t, 'send-dtmf-both-ways', bytes([MODE_PT_MAP | MODE_DTMF]) + b''.join(
        [rec(OP_BROWSER_PLAIN, opus(1)), rec(OP_PBX_PLAIN_RTP, pcmu(1)),
         rec(OP_CONTROL, bytes([2, 0x80 | ord('7'), 0, 100])), rec(OP_CONTROL, bytes([2, ord('#'), 0, 250])),
         rec(OP_CONTROL, bytes([2, ord('x'), 0, 100])), rec(OP_BROWSER_PLAIN, opus(2))]))
    write(t, 'hold-and-resume', bytes([MODE_PT_MAP]) + b''.join(
        [rec(OP_CONTROL, bytes([0, 1])),  # set_sending(to_pbx, false)
         rec(OP_BROWSER_PLAIN, opus(1)), rec(OP_CONTROL, bytes([0, 3])), rec(OP_BROWSER_PLAIN, opus(2)),
         rec(OP_CONTROL, bytes([0, 0])), rec(OP_PBX_PLAIN_RTP, pcmu(2))]))
    write(t, 'echo-mode', bytes([MODE_ECHO | MODE_DTMF]) + rec(OP_BROWSER_PLAIN, opus(1)) +
          rec(OP_BROWSER_PLAIN, dtmf_b(2, 1, True, 960)) + rec(OP_BROWSER_PLAIN, rtcp_sr(0x1111)))
    write(t, 'rtp-csrc-ext-padding', bytes([MODE_DTMF]) + b''.join(
        [rec(OP_BROWSER_PLAIN, rtp(126, 9, 100, 0x1111, te(3, True, 10, 480), csrcs=(1, 2), ext=b'\x10\xaa\x00\x00',
                                   padding=4)),
         rec(OP_PBX_UDP_RTP, rtp(101, 10, 100, 0x2222, te(4, True, 10, 480), ext=b'\x00' * 8, padding=2)),
         rec(OP_PBX_PLAIN_RTP, rtp(101, 11, 100, 0x2222, b'\x04', csrcs=(7,)))]))
    write(t, 'pt-map-and-dtmf-settings', bytes([0]) + b''.join(
        [rec(OP_CONTROL, bytes([4, 111, 0, 9, 9, 126, 101, 0, 111])),
         rec(OP_CONTROL, bytes([3, 126, 101, 0x02])), rec(OP_CONTROL, bytes([3, 0xff, 130, 0x33])),
         rec(OP_BROWSER_PLAIN, opus(1)), rec(OP_PBX_PLAIN_RTP, pcmu(1))]))
    write(t, 'browser-datagrams-demux', bytes([0]) + b''.join(
        [rec(OP_BROWSER_DATAGRAM, stun_binding_request()), rec(OP_BROWSER_DATAGRAM, dtls_client_hello()),
         rec(OP_BROWSER_DATAGRAM, opus(1) + b'\x00' * 10), rec(OP_BROWSER_DATAGRAM, rtcp_sr(0x1111) + b'\x80\0\0\1'),
         rec(OP_BROWSER_DATAGRAM, b'\x40ZRTP-ish'), rec(OP_BROWSER_DATAGRAM, b'\x01')]))
    write(t, 'dtls-client-hello', bytes([0]) + rec(OP_BROWSER_DATAGRAM, dtls_client_hello()))
    write(t, 'pbx-socket-junk', bytes([0]) + b''.join(
        [rec(OP_PBX_UDP_RTP, stun_binding_request()), rec(OP_PBX_UDP_RTP, b'\x80\x00\x00'),
         rec(OP_PBX_UDP_RTCP, b'\x16\xfe\xfd' + b'\x00' * 20), rec(OP_PBX_UDP_RTP, pcmu(1, marker=True))]))
    write(t, 'srtp-cm', bytes([0]) + rec(OP_SRTP_ROUND_TRIP, opus(1)) + rec(OP_SRTP_ROUND_TRIP, rtcp_sr(0x1111)) +
          rec(OP_SRTP_ROUND_TRIP, opus(1)) + rec(OP_SRTP_UNPROTECT, opus(2) + b'\x00' * 10) +
          rec(OP_SRTP_UNPROTECT, rtcp_sr(0x1111) + b'\x80\x00\x00\x01' + b'\x00' * 10))
    write(t, 'srtp-gcm', bytes([MODE_GCM]) + rec(OP_SRTP_ROUND_TRIP, pcmu(1, csrcs=(3,), ext=b'\x11\x22\x33\x44')) +
          rec(OP_SRTP_ROUND_TRIP, rtcp_compound(0x2222)) + rec(OP_SRTP_UNPROTECT, pcmu(9) + b'\x01' * 16))


# ---------------------------------------------------------------------------
# configuration (fuzz_config)

def config_seeds():
    t = 'config'
    clean(t)
    with open(os.path.join(ROOT, 'config', 'rtcsipd.conf'), 'rb') as f:
        example = f.read()
    write(t, 'example', example)
    minimal = b'[sip]\ndomains = localhost\n[pbx]\nhost = 127.0.0.1\n'
    write(t, 'minimal', minimal)
    write(t, 'full', b'''[general]
log_level = debug
[websocket]
ws = [::1]:8080
wss = 0.0.0.0:8443
static_dir =
[sip]
listen = 0.0.0.0:5070
advertised_address = 192.0.2.10
domains = example.com, Example.org,localhost
echo_user =
session_expires = 0
min_se = 90
[pbx]
host = pbx.example.com
port = 5061
transport = tls
trusted = 10.0.0.0/24, 2001:db8::/64, 192.0.2.7
[media]
rtp_port_min = 30000
rtp_port_max = 30001
stun_servers = stun:stun.example.org:3478, stun:[2001:db8::3]:3478
turn_servers = turn:turn.example.org:3478?transport=udp, turns:turn.example.org:5349
turn_username = rtcsipd
turn_password = secret
ice_addresses = 192.0.2.10, 2001:db8::10
media_timeout = 0
dtmf_to_pbx = info
dtmf_to_browser = rfc4733
rtp_source = latch
ice_candidates_max = 1
ice_loopback = false
ice_allow = 0.0.0.0/0
ice_deny = 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16
[limits]
connections_per_ip = 0
max_message_size = 1024
max_registrations = 1
max_expires = 60
transaction_timeout = 1
ring_timeout = 1
max_calls = 1
pending_calls_per_connection = 1
pending_calls_per_ip = 1
''')
    bad = {
        'unknown-key': minimal + b'[websocket]\nbogus = 1\n',
        'unknown-group': minimal + b'[nope]\n',
        'bad-port': minimal + b'[websocket]\nws = 127.0.0.1:99999\n',
        'duplicate-key': minimal + b'[pbx]\nport = 5060\nport = 5061\n',
        'no-listener': minimal + b'[websocket]\nws =\nwss =\n',
        'same-ports': minimal + b'[websocket]\nws = 127.0.0.1:8080\nwss = 0.0.0.0:8080\n',
        'cert-without-key': minimal + b'[websocket]\ncertificate = /etc/hostname\n',
        'session-expires-below-min-se': minimal.replace(b'[pbx]', b'session_expires = 60\nmin_se = 90\n[pbx]'),
        'bad-network': minimal + b'[media]\nice_deny = 10.0.0.0/33\n',
        'rtp-range-empty': minimal + b'[media]\nrtp_port_min = 3000\nrtp_port_max = 3000\n',
        'turn-without-credentials': minimal + b'[media]\nturn_servers = turn:192.0.2.1:3478\n',
        'pending-above': minimal + b'[limits]\npending_calls_per_connection = 9\npending_calls_per_ip = 3\n',
        'syntax-error': b'[sip\ndomains localhost\n',
        'not-utf8': minimal + b'# \xc3\x28\n',
        'advertised-needed': b'[sip]\nlisten = 0.0.0.0:5070\ndomains = a\n[pbx]\nhost = 127.0.0.1\n',
        'key-outside-group': b'domains = x\n' + minimal,
        'relative-paths': minimal + b'[websocket]\ncertificate = cert.pem\nprivate_key = key.pem\n'
                                    b'static_dir = www\n[pbx]\ntls_directory = tls\n',
        'ipv6-listen': minimal + b'[websocket]\nws = [2001:db8::1]:80\nwss = [::]:443\n',
        'log-level-bad': b'[general]\nlog_level = loud\n' + minimal,
    }
    for name, text in bad.items():
        write(t, name, text)


if __name__ == '__main__':
    ws_router()
    sdp()
    media()
    config_seeds()
