// Why a vote is still waiting, as delivery.js records it with the vote: in English, as keys that
// outlive a change of the page's language. A final refusal is recorded by its problem type's last
// part ("poll-closed"). advice.js shows both in the page's language.

import { K_ } from "./i18n.js";

export const NETWORK_ERROR = K_("network error");
export const RECEIPT_REJECTED = K_("receipt did not verify");
