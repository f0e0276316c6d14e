//! The texts of the user pages, one match per language. Keep each language's entries in the
//! order of [`Text`]; a translation names the same `{placeholders}` as the English.

use super::Text;

pub(super) fn english(key: Text) -> &'static str {
    match key {
        Text::Cancel => "Cancel",
        Text::Continue => "Continue",
        Text::TryAgain => "Try again",
        Text::ChooseTitle => "Choose how to sign in",
        Text::MethodTotp => "Code from an authenticator app",
        Text::MethodFido => "Security key or passkey",
        Text::MethodSmartCard => "Smart card or certificate in this browser",
        Text::MethodMobilePki => "Certificate app on your phone",
        Text::OtpTitle => "Enter your code",
        Text::OtpIntro => {
            "Open your authenticator app and enter the {digits}-digit code it shows for this \
             account."
        }
        Text::OtpLabel => "Code",
        Text::OtpVerify => "Verify",
        Text::OtpFormat => "Enter the {digits}-digit code from your authenticator app.",
        Text::OtpReplayed => {
            "That code has already been used. Wait for the next code and enter it."
        }
        Text::OtpWrong => "That code is not right. Attempts left: {remaining}.",
        Text::FidoTitle => "Use your security key",
        Text::FidoIntro => {
            "When your browser asks, insert or touch your security key, or confirm with your \
             device's passkey."
        }
        Text::FidoStart => "Use security key",
        Text::FidoWaiting => "Waiting for your security key…",
        Text::FidoNoScript => "This step needs JavaScript to talk to your security key.",
        Text::FidoCancelledTitle => "Security key not used",
        Text::FidoCancelled => {
            "The request to your security key was cancelled or timed out. Try again, or cancel \
             the sign-in."
        }
        Text::FidoUnsupported => {
            "This browser cannot use security keys. Open the sign-in in another browser, or \
             cancel it."
        }
        Text::EnrolTitle => "Add a security key",
        Text::EnrolIntro => {
            "Register a security key or passkey for signing in as {user}. This link works once \
             and expires soon."
        }
        Text::EnrolStart => "Add security key",
        Text::KeyName => "Name for this key (optional)",
        Text::EnrolDoneTitle => "Security key added",
        Text::EnrolDone => "Your security key is ready for signing in. You can close this page.",
        Text::EnrolCancelled => {
            "The security key was not registered: the request was cancelled or timed out. Try \
             again when your key is ready."
        }
        Text::EnrolRefused => {
            "This security key cannot be used here: {reason} Ask your administrator which \
             keys are allowed."
        }
        Text::LinkInvalidTitle => "Link not valid",
        Text::LinkInvalid => {
            "This enrolment link has expired, has already been used, or is not valid. Ask your \
             administrator for a new one."
        }
        Text::SmartCardTitle => "Sign in with your smart card",
        Text::SmartCardIntro => {
            "Insert your smart card, or have the certificate for your account ready in this \
             browser. When you continue, the browser asks which certificate to use and may ask \
             for the card's PIN."
        }
        Text::SmartCardUse => "Use my certificate",
        Text::SmartCardNone => {
            "No certificate was presented. Insert your smart card, or choose your certificate \
             when the browser asks, then try again."
        }
        Text::MobileTitle => "Approve on your phone",
        Text::MobileIntro => {
            "Scan this code with your organisation's certificate app and approve the sign-in."
        }
        Text::MobileQrLabel => "QR code for the phone app",
        Text::MobileCode => "Code shown in the app:",
        Text::MobileOpenApp => "Open in the app on this device",
        Text::MobileReplaced => "That code is no longer valid. Scan this new one.",
        Text::MobileNotYet => "Your phone has not approved the sign-in yet.",
        Text::MobileBadSignature => "Your phone's signature did not verify.",
        Text::CertUnavailable => "The certificate's revocation status cannot be checked right now.",
        Text::CertEmpty => "No certificate was presented.",
        Text::CertExpired => "This certificate expired on {date}. Ask for a renewed one.",
        Text::CertNotYetValid => "This certificate is not valid yet.",
        Text::CertRevoked => "This certificate has been revoked.",
        Text::CertUntrusted => {
            "This certificate was not issued by an authority trusted for your organisation."
        }
        Text::CertWrongUse => "This certificate may not be used to sign in.",
        Text::CertNotYours => "This certificate does not belong to your account.",
        Text::CertRefused => "This certificate cannot be used to sign in.",
        Text::ProblemTitle => "Sign-in cannot continue",
        Text::Expired => {
            "This sign-in took too long and has expired. Start again from the sign-in page."
        }
        Text::Finished => "This sign-in has already finished. Start again from the sign-in page.",
        Text::LockedOut => {
            "There were too many wrong attempts, so signing in is paused for a few minutes. \
             Start again later."
        }
        Text::Returning => "Returning to sign-in",
        Text::ReturningNoScript => "Select Continue to finish signing in.",
        Text::NotFoundTitle => "Not found",
        Text::NotFound => "There is nothing at this address.",
        Text::NotAllowedTitle => "Request not allowed",
        Text::NotAllowed => "This address does not answer that kind of request.",
        Text::BusyTitle => "Busy",
        Text::Busy => "The sign-in service is busy. Try again in a moment.",
        Text::NotUnderstoodTitle => "Request not understood",
        Text::NotForm => "This address accepts only forms that a browser posts.",
        Text::Unreadable => "The request could not be read.",
        Text::TooLargeTitle => "Request too large",
        Text::TooLarge => "The request is larger than the {max} bytes this service accepts.",
        Text::TooSlowTitle => "Request too slow",
        Text::TooSlow => "The request did not arrive in time. Try again.",
        Text::FormUnreadable => "The form could not be read. Start again from the sign-in page.",
        Text::NotOurs => {
            "This sign-in was not started by this service. Start again from the sign-in page."
        }
        Text::NotOffered => "This sign-in does not offer that way of signing in.",
        Text::FormIncomplete => {
            "The form did not say what to do. Go back and use the page's buttons."
        }
        Text::OtherSignIn => "That code belongs to another sign-in.",
        Text::RequestRefusedTitle => "Sign-in request refused",
        Text::RequestRefused => {
            "The sign-in request from Microsoft Entra could not be accepted: {why}"
        }
    }
}

pub(super) fn german(key: Text) -> &'static str {
    match key {
        Text::Cancel => "Abbrechen",
        Text::Continue => "Weiter",
        Text::TryAgain => "Erneut versuchen",
        Text::ChooseTitle => "Anmeldemethode wählen",
        Text::MethodTotp => "Code aus einer Authenticator-App",
        Text::MethodFido => "Sicherheitsschlüssel oder Passkey",
        Text::MethodSmartCard => "Smartcard oder Zertifikat in diesem Browser",
        Text::MethodMobilePki => "Zertifikats-App auf Ihrem Telefon",
        Text::OtpTitle => "Code eingeben",
        Text::OtpIntro => {
            "Öffnen Sie Ihre Authenticator-App und geben Sie den {digits}-stelligen Code ein, \
             den sie für dieses Konto anzeigt."
        }
        Text::OtpLabel => "Code",
        Text::OtpVerify => "Bestätigen",
        Text::OtpFormat => "Geben Sie den {digits}-stelligen Code aus Ihrer Authenticator-App ein.",
        Text::OtpReplayed => {
            "Dieser Code wurde bereits verwendet. Warten Sie auf den nächsten Code und geben \
             Sie ihn ein."
        }
        Text::OtpWrong => "Der Code ist nicht richtig. Verbleibende Versuche: {remaining}.",
        Text::FidoTitle => "Sicherheitsschlüssel verwenden",
        Text::FidoIntro => {
            "Wenn Ihr Browser danach fragt, stecken oder berühren Sie Ihren \
             Sicherheitsschlüssel oder bestätigen Sie mit dem Passkey Ihres Geräts."
        }
        Text::FidoStart => "Sicherheitsschlüssel verwenden",
        Text::FidoWaiting => "Warten auf Ihren Sicherheitsschlüssel…",
        Text::FidoNoScript => {
            "Für diesen Schritt wird JavaScript benötigt, um mit Ihrem Sicherheitsschlüssel \
             zu sprechen."
        }
        Text::FidoCancelledTitle => "Sicherheitsschlüssel nicht verwendet",
        Text::FidoCancelled => {
            "Die Anfrage an Ihren Sicherheitsschlüssel wurde abgebrochen oder ist abgelaufen. \
             Versuchen Sie es erneut oder brechen Sie die Anmeldung ab."
        }
        Text::FidoUnsupported => {
            "Dieser Browser kann keine Sicherheitsschlüssel verwenden. Öffnen Sie die Anmeldung \
             in einem anderen Browser oder brechen Sie sie ab."
        }
        Text::EnrolTitle => "Sicherheitsschlüssel hinzufügen",
        Text::EnrolIntro => {
            "Registrieren Sie einen Sicherheitsschlüssel oder Passkey für die Anmeldung als \
             {user}. Dieser Link gilt einmal und nur kurze Zeit."
        }
        Text::EnrolStart => "Sicherheitsschlüssel hinzufügen",
        Text::KeyName => "Name für diesen Schlüssel (optional)",
        Text::EnrolDoneTitle => "Sicherheitsschlüssel hinzugefügt",
        Text::EnrolDone => {
            "Ihr Sicherheitsschlüssel ist für die Anmeldung bereit. Sie können diese Seite \
             schließen."
        }
        Text::EnrolCancelled => {
            "Der Sicherheitsschlüssel wurde nicht registriert: Die Anfrage wurde abgebrochen \
             oder ist abgelaufen. Versuchen Sie es erneut, wenn Ihr Schlüssel bereit ist."
        }
        Text::EnrolRefused => {
            "Dieser Sicherheitsschlüssel kann hier nicht verwendet werden: {reason} Fragen Sie \
             Ihre Administration, welche Schlüssel erlaubt sind."
        }
        Text::LinkInvalidTitle => "Link ungültig",
        Text::LinkInvalid => {
            "Dieser Registrierungslink ist abgelaufen, wurde bereits verwendet oder ist \
             ungültig. Bitten Sie Ihre Administration um einen neuen."
        }
        Text::SmartCardTitle => "Mit Ihrer Smartcard anmelden",
        Text::SmartCardIntro => {
            "Stecken Sie Ihre Smartcard ein oder halten Sie das Zertifikat für Ihr Konto in \
             diesem Browser bereit. Wenn Sie fortfahren, fragt der Browser, welches Zertifikat \
             er verwenden soll, und eventuell nach der PIN der Karte."
        }
        Text::SmartCardUse => "Mein Zertifikat verwenden",
        Text::SmartCardNone => {
            "Es wurde kein Zertifikat vorgelegt. Stecken Sie Ihre Smartcard ein oder wählen Sie \
             Ihr Zertifikat, wenn der Browser danach fragt, und versuchen Sie es dann erneut."
        }
        Text::MobileTitle => "Auf dem Telefon bestätigen",
        Text::MobileIntro => {
            "Scannen Sie diesen Code mit der Zertifikats-App Ihrer Organisation und bestätigen \
             Sie die Anmeldung."
        }
        Text::MobileQrLabel => "QR-Code für die Telefon-App",
        Text::MobileCode => "In der App angezeigter Code:",
        Text::MobileOpenApp => "In der App auf diesem Gerät öffnen",
        Text::MobileReplaced => "Dieser Code ist nicht mehr gültig. Scannen Sie diesen neuen.",
        Text::MobileNotYet => "Ihr Telefon hat die Anmeldung noch nicht bestätigt.",
        Text::MobileBadSignature => "Die Signatur Ihres Telefons ist ungültig.",
        Text::CertUnavailable => {
            "Der Sperrstatus des Zertifikats kann gerade nicht geprüft werden."
        }
        Text::CertEmpty => "Es wurde kein Zertifikat vorgelegt.",
        Text::CertExpired => {
            "Dieses Zertifikat ist am {date} abgelaufen. Fordern Sie ein erneuertes an."
        }
        Text::CertNotYetValid => "Dieses Zertifikat ist noch nicht gültig.",
        Text::CertRevoked => "Dieses Zertifikat wurde gesperrt.",
        Text::CertUntrusted => {
            "Dieses Zertifikat wurde nicht von einer Stelle ausgestellt, der Ihre Organisation \
             vertraut."
        }
        Text::CertWrongUse => "Dieses Zertifikat darf nicht zur Anmeldung verwendet werden.",
        Text::CertNotYours => "Dieses Zertifikat gehört nicht zu Ihrem Konto.",
        Text::CertRefused => "Dieses Zertifikat kann nicht zur Anmeldung verwendet werden.",
        Text::ProblemTitle => "Anmeldung kann nicht fortgesetzt werden",
        Text::Expired => {
            "Diese Anmeldung hat zu lange gedauert und ist abgelaufen. Beginnen Sie erneut auf \
             der Anmeldeseite."
        }
        Text::Finished => {
            "Diese Anmeldung ist bereits abgeschlossen. Beginnen Sie erneut auf der Anmeldeseite."
        }
        Text::LockedOut => {
            "Es gab zu viele falsche Versuche, daher ist die Anmeldung für einige Minuten \
             gesperrt. Versuchen Sie es später erneut."
        }
        Text::Returning => "Zurück zur Anmeldung",
        Text::ReturningNoScript => "Wählen Sie Weiter, um die Anmeldung abzuschließen.",
        Text::NotFoundTitle => "Nicht gefunden",
        Text::NotFound => "Unter dieser Adresse gibt es nichts.",
        Text::NotAllowedTitle => "Anfrage nicht erlaubt",
        Text::NotAllowed => "Diese Adresse beantwortet diese Art von Anfrage nicht.",
        Text::BusyTitle => "Ausgelastet",
        Text::Busy => {
            "Der Anmeldedienst ist gerade ausgelastet. Versuchen Sie es gleich noch einmal."
        }
        Text::NotUnderstoodTitle => "Anfrage nicht verstanden",
        Text::NotForm => "Diese Adresse nimmt nur Formulare an, die ein Browser sendet.",
        Text::Unreadable => "Die Anfrage konnte nicht gelesen werden.",
        Text::TooLargeTitle => "Anfrage zu groß",
        Text::TooLarge => "Die Anfrage ist größer als die {max} Bytes, die der Dienst annimmt.",
        Text::TooSlowTitle => "Anfrage zu langsam",
        Text::TooSlow => "Die Anfrage kam nicht rechtzeitig an. Versuchen Sie es noch einmal.",
        Text::FormUnreadable => {
            "Das Formular konnte nicht gelesen werden. Beginnen Sie erneut auf der Anmeldeseite."
        }
        Text::NotOurs => {
            "Diese Anmeldung wurde nicht von diesem Dienst begonnen. Beginnen Sie erneut auf der \
             Anmeldeseite."
        }
        Text::NotOffered => "Diese Anmeldung bietet diese Art der Anmeldung nicht an.",
        Text::FormIncomplete => {
            "Das Formular sagt nicht, was zu tun ist. Gehen Sie zurück und verwenden Sie die \
             Schaltflächen der Seite."
        }
        Text::OtherSignIn => "Dieser Code gehört zu einer anderen Anmeldung.",
        Text::RequestRefusedTitle => "Anmeldeanfrage abgelehnt",
        Text::RequestRefused => {
            "Die Anmeldeanfrage von Microsoft Entra konnte nicht angenommen werden: {why}"
        }
    }
}
