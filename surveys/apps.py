from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = "Surveys"

    def ready(self):
        """What surveys adds to retention, through its registries (retention imports nothing
        of surveys): the signed link of a survey answer and the invitation email's preview."""
        from retention.mail import links, previews
        from retention.mail.models import OutboxMessage, Topic

        # The links of invitations already sent were signed under this name: keep it.
        links.register_purpose(links.Purpose("survey", days=30))
        previews.register(previews.Preview(
            "email/survey_invitation", "A survey invitation", OutboxMessage.Kind.SURVEY,
            Topic.SURVEYS,
            sample={"question": "How likely are you to recommend us to a colleague?"}))
