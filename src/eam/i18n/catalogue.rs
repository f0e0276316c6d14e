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
    }
}
