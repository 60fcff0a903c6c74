// A desktop notification service for the tests: it takes the well-known name
// org.freedesktop.Notifications on the session bus (the test's private one) and records
// every notification it is sent, as a real desktop's would show them.
'use strict';
const dbus = require('dbus-next');

const NAME = 'org.freedesktop.Notifications';
const PATH = '/org/freedesktop/Notifications';

class Notifications extends dbus.interface.Interface {
  constructor(received) { super(NAME); this.received = received; this.nextId = 1; }
  Notify(appName, replacesId, icon, summary, body, actions, hints, timeout) {
    this.received.push({ appName, summary, body, at: Date.now() });
    return replacesId || this.nextId++;
  }
  GetCapabilities() { return ['body']; }
  GetServerInformation() { return ['stock-dashboard-test', 'tests', '1.0', '1.2']; }
  CloseNotification() {}
}
Notifications.configureMembers({
  methods: {
    Notify: { inSignature: 'susssasa{sv}i', outSignature: 'u' },
    GetCapabilities: { inSignature: '', outSignature: 'as' },
    GetServerInformation: { inSignature: '', outSignature: 'ssss' },
    CloseNotification: { inSignature: 'u', outSignature: '' },
  },
});

/** Serves on the session bus (DBUS_SESSION_BUS_ADDRESS); `received` fills as notifications come. */
async function startNotificationServer() {
  const bus = dbus.sessionBus();
  const received = [];
  bus.export(PATH, new Notifications(received));
  const reply = await bus.requestName(NAME, dbus.NameFlag.DO_NOT_QUEUE);
  if (reply !== dbus.RequestNameReply.PRIMARY_OWNER) throw new Error(`${NAME} is already taken on this bus (${reply})`);
  return { received, close: () => bus.disconnect() };
}

module.exports = { startNotificationServer };
